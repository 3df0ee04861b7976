"""Run a documentation page's code blocks in order, as a reader would, in one namespace.

Usage: ``python _runner.py PAGE.md`` from the directory the page should run in (the
test gives each page a fresh temporary directory and a fresh interpreter, so pages
cannot leak patches, environment or global OpenTelemetry providers into each other).

What runs:

- every ```` ```python ```` block, in order, in one namespace (``__name__ == "__main__"``);
  tracebacks name the page and its line numbers;
- a ```` ```bash ```` block preceded by ``<!-- docs-test: run -->``, with ``bash -eu``
  in the same directory, the virtualenv's ``bin`` first on ``PATH`` (``codon``,
  ``python``); variables it exports carry on to later blocks.
  ``<!-- docs-test: run returncode=N -->`` expects exit status N instead of 0;
- nothing else: other fence languages (``text``, ``json``, unmarked ``bash``) are for reading.

Markers are HTML comments, invisible on the rendered site. Before a block:

- ``<!-- docs-test: file=NAME -->``: write the block to ``NAME`` instead of running it
  (a module the page imports, a script a later ``bash`` block runs);
- ``<!-- docs-test: skip -->``: do not run this ``python`` block.

Anywhere on the page, a set-up the page's visible code relies on:

- ``<!-- docs-test: anthropic-server -->``: the same for the Anthropic Messages protocol
  (``ANTHROPIC_BASE_URL`` / ``ANTHROPIC_API_KEY``, bundled Anthropic recordings);
- ``<!-- docs-test: nats -->``: ``CODON_AUDIT_SINK_URL`` names a stream of the page's own
  on the NATS JetStream server at 127.0.0.1:4222, deleted after the page; without a
  server the page exits with :data:`SKIPPED`;
- ``<!-- docs-test: openai-server -->``: the local OpenAI-protocol server from
  ``codon_sdk.testing`` (bundled recordings, echo fallback) runs for the page, and
  ``OPENAI_BASE_URL`` / ``OPENAI_API_KEY`` point the real ``openai`` client at it;
- ``<!-- docs-test: otlp-receiver -->``: a local OTLP receiver runs for the page and
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` points at it; after the page it must have received spans;
- ``<!-- docs-test: postgres -->``: ``CODON_LEDGER_URL`` is a throwaway PostgreSQL
  database (given by the test as ``CODON_DOCS_PG_URL``); without one the page exits
  with :data:`SKIPPED`;
- ``<!-- docs-test: ray -->``: a local Ray cluster the page starts stays on loopback
  (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``) without usage stats, and is shut down after
  the page.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import subprocess
import sys
import tempfile
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIPPED = 77  # exit status: the page needs something this machine does not have

BLOCK_KEYS = frozenset({"file", "run", "returncode", "skip"})
PAGE_KEYS = frozenset(
    {"anthropic-server", "nats", "openai-server", "otlp-receiver", "postgres", "ray"}
)
READ_ONLY_LANGUAGES = frozenset({"bash", "text", "json", "yaml", "toml", "ini", "console"})
LANGUAGES = READ_ONLY_LANGUAGES | {"python"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[^\s`]*)(?:\s+[^`]*)?$")  # lang, options
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")


class PageError(ValueError):
    """The page's Markdown or its markers are malformed."""


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced code block: its language, dedented code, first code line, markers."""

    lang: str
    code: str
    line: int
    markers: dict[str, str] = field(default_factory=dict)

    @property
    def runs(self) -> bool:
        if "file" in self.markers or "skip" in self.markers:
            return False
        return self.lang == "python" or (self.lang == "bash" and "run" in self.markers)


@dataclass(frozen=True, slots=True)
class Page:
    path: Path
    blocks: list[Block]
    setups: frozenset[str]

    @property
    def runs(self) -> bool:
        return any(b.runs or "file" in b.markers for b in self.blocks)


def _markers(body: str, where: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in body.split():
        key, _, value = item.partition("=")
        if key not in BLOCK_KEYS | PAGE_KEYS:
            raise PageError(f"{where}: unknown docs-test marker {key!r}")
        out[key] = value
    return out


def parse_page(path: Path) -> Page:
    """The page's code blocks and set-ups; raise :class:`PageError` for malformed fences."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    setups: set[str] = set()
    pending: dict[str, str] = {}
    in_comment = False  # inside another HTML comment, which may stand between marker and block
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = _MARKER.match(line)
        fence = _FENCE.match(line)
        if in_comment or (line.lstrip().startswith("<!--") and not marker):
            in_comment = "-->" not in line
        elif marker:
            found = _markers(marker.group("body"), f"{path}:{i + 1}")
            setups.update(k for k in found if k in PAGE_KEYS)
            pending.update({k: v for k, v in found.items() if k in BLOCK_KEYS})
        elif fence:
            indent, lang = fence.group("indent"), fence.group("lang")
            if lang not in LANGUAGES:
                raise PageError(
                    f"{path}:{i + 1}: a code block needs a language from {sorted(LANGUAGES)}, "
                    f"got {lang!r} (python blocks run in the tests; use text for anything else)"
                )
            start = i + 1
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            if i == len(lines):
                raise PageError(f"{path}:{start}: code block is never closed")
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start:i]]
            blocks.append(Block(lang, "\n".join(body) + "\n", start + 1, pending))
            pending = {}
        elif pending and line.strip():
            raise PageError(f"{path}:{i + 1}: a docs-test block marker must precede a code block")
        i += 1
    return Page(path, blocks, frozenset(setups))


# --------------------------------------------------------------------------- set-ups


@contextlib.contextmanager
def _openai_server() -> Iterator[None]:
    from codon_sdk.testing import OpenAIProtocolServer, bundled_recordings, echo_fallback

    with OpenAIProtocolServer(bundled_recordings(), fallback=echo_fallback) as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ["OPENAI_API_KEY"] = "sk-docs-test-not-a-real-key"
        yield


@contextlib.contextmanager
def _anthropic_server() -> Iterator[None]:
    from codon_sdk.testing import AnthropicProtocolServer, bundled_anthropic_recordings

    with AnthropicProtocolServer(bundled_anthropic_recordings()) as server:
        os.environ["ANTHROPIC_BASE_URL"] = server.base_url
        os.environ["ANTHROPIC_API_KEY"] = "sk-ant-docs-test-not-a-real-key"
        yield


@contextlib.contextmanager
def _otlp_receiver() -> Iterator[None]:
    from codon_sdk.testing import OTLPReceiver

    with OTLPReceiver() as receiver:
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.grpc_endpoint
        yield
        if not receiver.spans:
            raise AssertionError("the page's telemetry never reached the OTLP receiver")


@contextlib.contextmanager
def _postgres() -> Iterator[None]:
    url = os.environ.get("CODON_DOCS_PG_URL")
    if not url:
        print("docs-test: no PostgreSQL database given (CODON_DOCS_PG_URL)", file=sys.stderr)
        raise SystemExit(SKIPPED)
    os.environ["CODON_LEDGER_URL"] = url
    yield


@contextlib.contextmanager
def _nats() -> Iterator[None]:
    import socket
    import uuid

    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        print("docs-test: no NATS server on 127.0.0.1:4222", file=sys.stderr)
        raise SystemExit(SKIPPED) from None
    name = f"DOCS_{uuid.uuid4().hex[:12]}"
    url = f"nats://127.0.0.1:4222?stream={name}&subject=docs.{name}"
    os.environ["CODON_AUDIT_SINK_URL"] = url
    try:
        yield
    finally:
        from codon_sdk.sinks import NatsSink, open_sink

        sink = open_sink(url)
        assert isinstance(sink, NatsSink)
        sink.delete_stream()
        sink.close()


@contextlib.contextmanager
def _ray() -> Iterator[None]:
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # read when ray is imported
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token file written to ~/.ray
    try:
        yield
    finally:
        ray = sys.modules.get("ray")
        if ray is not None and ray.is_initialized():
            ray.shutdown()


_SETUPS = {
    "anthropic-server": _anthropic_server,
    "nats": _nats,
    "openai-server": _openai_server,
    "otlp-receiver": _otlp_receiver,
    "postgres": _postgres,
    "ray": _ray,
}


# --------------------------------------------------------------------------- running


def _run_python(block: Block, page: Path, namespace: dict[str, Any]) -> None:
    filename = str(page)
    source = "\n" * (block.line - 1) + block.code
    # so tracebacks and inspect.getsource see the block's code at the page's line numbers
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


def _run_bash(block: Block, page: Path) -> None:
    expected = int(block.markers.get("returncode") or 0)
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    with tempfile.NamedTemporaryFile(suffix=".env", delete=False) as dump:
        env_file = dump.name
    script = block.code if expected else f"{block.code}\nenv -0 > {env_file}\n"
    sys.stdout.flush()
    done = subprocess.run(["bash", "-eu", "-c", script], env=env, check=False, timeout=120)
    # bash may exec the last command itself: a signal then shows as -N, a shell says 128+N
    status = 128 - done.returncode if done.returncode < 0 else done.returncode
    try:
        if status != expected:
            raise AssertionError(
                f"{page}:{block.line}: the bash block exited {status}, expected {expected}"
            )
        if not expected:
            exported = Path(env_file).read_bytes().split(b"\0")
            for item in exported:
                key, sep, value = item.decode().partition("=")
                if sep and key not in ("PATH", "_", "SHLVL", "PWD", "OLDPWD"):
                    os.environ[key] = value
    finally:
        os.unlink(env_file)


def run_page(path: Path) -> None:
    """Run ``path``'s blocks in the current directory (see the module docstring)."""
    page = parse_page(path)
    sys.path.insert(0, os.getcwd())
    # the page is the program's __main__ module, so typing.get_type_hints, pickle and
    # friends find what its blocks define (this runner script gives up the name)
    main = types.ModuleType("__main__")
    main.__file__ = str(path)
    sys.modules["__main__"] = main
    namespace = main.__dict__
    with contextlib.ExitStack() as stack:
        for setup in sorted(page.setups):
            stack.enter_context(_SETUPS[setup]())
        for block in page.blocks:
            if "file" in block.markers:
                Path(block.markers["file"]).write_text(block.code, encoding="utf-8")
            elif not block.runs:
                continue
            elif block.lang == "python":
                _run_python(block, path, namespace)
            else:
                _run_bash(block, path)
            sys.stdout.flush()


if __name__ == "__main__":
    run_page(Path(sys.argv[1]).resolve())
