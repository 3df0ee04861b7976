"""What every ``codon`` command shares: the ledger URL, output, exit codes, errors."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any, Final, NoReturn

import orjson

from codon_sdk._text import printable
from codon_sdk.errors import CodonError, RunNotFoundError, StoreError
from codon_sdk.redaction import default_redactor
from codon_sdk.stores import LedgerStore, default_ledger_url, mask_url, open_store

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "add_ledger",
    "emit_json",
    "json_arg",
    "opened_store",
]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


class CliError(Exception):
    """A usage problem the user can fix: printed without a traceback, exit code 2."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def add_ledger(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger",
        metavar="URL",
        help="ledger store URL (default: $CODON_LEDGER_URL, else sqlite:///.codon/ledger.db)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


@contextlib.contextmanager
def opened_store(url: str | None, *, must_exist: bool = True) -> Iterator[LedgerStore]:
    """Open the ledger named by ``--ledger`` (or the default), translating errors for the CLI."""
    target = url or default_ledger_url()
    if must_exist and target.startswith("sqlite:///"):
        import pathlib

        path = pathlib.Path(target[len("sqlite:///") :])
        if not path.exists():
            raise CliError(
                f"no ledger at {target} ({path} does not exist); pass --ledger URL or set "
                "CODON_LEDGER_URL"
            )
    try:
        store = open_store(target)
    except (StoreError, ImportError) as exc:
        raise CliError(f"cannot open ledger {mask_url(target)}: {exc}") from exc
    try:
        yield store
    except RunNotFoundError as exc:
        raise CliError(str(exc)) from exc
    finally:
        store.close()


# Characters JSON leaves unescaped that a terminal may still act on: DEL and the C1 controls
# (U+009B is a CSI in 8-bit mode), line and paragraph separators, bidirectional controls.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def json_text(value: Any) -> str:
    """``value`` as indented JSON, every character a terminal could act on escaped."""
    text = orjson.dumps(value, option=orjson.OPT_INDENT_2, default=str).decode()
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON, every character a terminal could act on escaped."""
    sys.stdout.write(json_text(value) + "\n")


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    raise CliError(message, code)


class _Redacting:
    """A text stream whose every write passes the default redaction policy first.

    What the CLI prints comes from the ledger (already redacted when written) and from
    messages that may quote a URL or a driver error: the policy masks any secret left.
    The binary ``buffer`` is not touched: ``codon export`` writes the ledger's exact
    bytes there, which must still verify.
    """

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._redact = default_redactor().redact_text

    def write(self, text: str) -> int:
        self._stream.write(self._redact(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def run_command(func: Any, args: argparse.Namespace) -> int:
    """Run one command with stdout and stderr through the redaction policy."""
    out, err = sys.stdout, sys.stderr
    if default_redactor().enabled:
        sys.stdout, sys.stderr = _Redacting(out), _Redacting(err)
    try:
        return _run(func, args)
    finally:
        sys.stdout, sys.stderr = out, err


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        return int(func(args))
    except CliError as exc:
        print(f"codon: {printable(exc)}", file=sys.stderr)
        return exc.code
    except CodonError as exc:
        print(f"codon: {printable(exc)}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `codon export ... | head`
        return EXIT_OK


def json_arg(text: str | None, option: str) -> Any:
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise CliError(
            f"{option} must be JSON (e.g. {option} '{{\"approved\": true}}' or {option} "
            f"'\"yes\"'): {exc}"
        ) from exc
