"""MkDocs hook: expand geossl's directives (``{{ cli("train") }}``...) in every page, from this checkout's code.

The directives and what they render are in :mod:`geossl.docgen.expand`. The repository root goes first on
``sys.path``, so the site describes the code beside it, whatever geossl the environment has installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from geossl.docgen.expand import DocError, Page, expand  # noqa: E402


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **kwargs: Any) -> str:
    """The page's markdown with every directive replaced; a directive that cannot be expanded fails the build."""
    try:
        return expand(markdown, Page(root=ROOT, folder=Path(page.file.abs_src_path).parent), page.file.src_path)
    except DocError as exc:
        raise PluginError(str(exc)) from exc
