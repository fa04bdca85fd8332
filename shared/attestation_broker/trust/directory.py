"""Recorded collateral served from a directory instead of the network (CLI ``--collateral DIR``).

A URL ``https://host/a/b?x=1`` is looked up, in order, as:

1. ``DIR/index.json`` — a JSON object mapping full URLs to file names relative to DIR;
2. ``DIR/host/a/b?x=1`` then ``DIR/host/a/b`` — a mirror of the vendor's URL space.

Nothing found is ``COLLATERAL_UNAVAILABLE``, exactly as an outage would be: recorded collateral is
still verified like fetched collateral.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from attestation_broker.errors import COLLATERAL_UNAVAILABLE, CONFIG_INVALID
from attestation_broker.trust.fetch import FetchResponse


class DirectoryFetcher:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        index_path = self._root / "index.json"
        self._index: dict[str, str] = {}
        if index_path.is_file():
            try:
                loaded = json.loads(index_path.read_text())
            except ValueError as exc:
                raise CONFIG_INVALID(f"collateral index is not JSON: {exc}") from None
            if not isinstance(loaded, dict):
                raise CONFIG_INVALID("collateral index must be a JSON object")
            self._index = {str(k): str(v) for k, v in loaded.items()}

    def _inside(self, path: Path) -> Path | None:
        resolved = path.resolve()
        if resolved.is_file() and resolved.is_relative_to(self._root):
            return resolved
        return None

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        candidates: list[Path] = []
        if url in self._index:
            candidates.append(self._root / self._index[url])
        parts = urllib.parse.urlsplit(url)
        mirror = self._root / parts.netloc / parts.path.lstrip("/")
        if parts.query:
            candidates.append(mirror.with_name(mirror.name + "?" + parts.query))
        candidates.append(mirror)
        for candidate in candidates:
            found = self._inside(candidate)
            if found is not None:
                return FetchResponse(url=url, body=found.read_bytes())
        raise COLLATERAL_UNAVAILABLE(f"no recorded collateral for {url}")
