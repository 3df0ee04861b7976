"""MkDocs hook: one API reference page per module named in the nav.

A nav entry ``reference/api/<dotted.module>.md`` whose file does not exist is
generated here as that module's mkdocstrings page, so adding a module to the
API reference is one line in ``mkdocs.yml``. A file that does exist (an
introduction, a page with prose around ``:::``) is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

API_DIR = "reference/api/"


def _nav_paths(nav: Any) -> Iterator[str]:
    """Every page path named in a nav configuration (nested lists and one-key dicts)."""
    if isinstance(nav, str):
        yield nav
    elif isinstance(nav, list):
        for item in nav:
            yield from _nav_paths(item)
    elif isinstance(nav, dict):
        for value in nav.values():
            yield from _nav_paths(value)


def module_page(module: str) -> str:
    """The Markdown of the API page of ``module``."""
    return (
        f"# `{module}`\n\n"
        f"::: {module}\n"
        "    options:\n"
        "      show_root_heading: false\n"
        "      show_root_toc_entry: false\n"
    )


def api_modules(nav: Any) -> list[str]:
    """The modules whose pages the nav names under ``reference/api/``."""
    modules = []
    for path in _nav_paths(nav):
        if path.startswith(API_DIR) and path.endswith(".md"):
            name = path[len(API_DIR) : -len(".md")]
            if name != "index" and "/" not in name:
                modules.append(name)
    return modules


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for module in api_modules(config.nav):
        src_uri = f"{API_DIR}{module}.md"
        if files.get_file_from_path(src_uri) is None:
            files.append(File.generated(config, src_uri, content=module_page(module)))
    return files
