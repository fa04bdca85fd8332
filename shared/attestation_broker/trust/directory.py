"""Recorded collateral served from a directory instead of the network (CLI ``--collateral DIR``).

A URL ``https://host/a/b?x=1`` is looked up, in order, as:

1. ``DIR/index.json`` — a JSON object mapping full URLs to file names relative to DIR (or to
   ``{"file": name, "headers": {...}}`` with the recorded response headers);
2. ``DIR/host/a/b?x=1`` then ``DIR/host/a/b`` — a mirror of the vendor's URL space.

Response headers recorded beside a file as ``<file>.headers.json`` (a JSON object) are returned with it:
this is how Intel's issuer-chain headers travel with a recorded TCB info or QE identity.
A malformed ``index.json`` is ``COLLATERAL_BUNDLE_INVALID`` (400; exit code 2 in the CLI).

Nothing found is ``COLLATERAL_UNAVAILABLE``, exactly as an outage would be: recorded collateral is
still verified like fetched collateral.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

from attestation_broker.errors import COLLATERAL_BUNDLE_INVALID, COLLATERAL_UNAVAILABLE
from attestation_broker.trust.fetch import FetchResponse


class DirectoryFetcher:
    offline = True  # opens no socket: an expired recorded copy is reported as expired, not as an outage

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        index_path = self._root / "index.json"
        self._index: dict[str, str] = {}
        self._headers: dict[str, dict[str, str]] = {}
        if not self._root.is_dir():
            raise COLLATERAL_BUNDLE_INVALID("the collateral directory does not exist or is not a directory")
        if index_path.is_file():
            try:
                loaded = json.loads(index_path.read_bytes())
            except (OSError, ValueError, RecursionError) as exc:
                raise COLLATERAL_BUNDLE_INVALID(f"collateral index.json is not JSON ({type(exc).__name__})") from None
            if not isinstance(loaded, dict):
                raise COLLATERAL_BUNDLE_INVALID("collateral index.json must be a JSON object of URL -> file")
            for url, entry in loaded.items():
                # "URL": "file"  or  "URL": {"file": "...", "headers": {"TCB-Info-Issuer-Chain": "..."}}
                if isinstance(entry, str):
                    self._index[url] = entry
                elif isinstance(entry, dict) and isinstance(entry.get("file"), str):
                    self._index[url] = entry["file"]
                    headers = entry.get("headers", {})
                    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                        raise COLLATERAL_BUNDLE_INVALID("collateral index.json headers must map names to strings")
                    self._headers[url] = {str(k): v for k, v in headers.items()}
                else:
                    raise COLLATERAL_BUNDLE_INVALID("collateral index.json values must be file names or objects")

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
                return FetchResponse(url=url, body=found.read_bytes(), headers=self._recorded_headers(url, found))
        raise COLLATERAL_UNAVAILABLE(f"no recorded collateral for {url}")

    def _recorded_headers(self, url: str, found: Path) -> dict[str, str]:
        """Response headers recorded beside a file (``<file>.headers.json``) or in index.json; {} if none."""
        if url in self._headers:
            return self._headers[url]
        sidecar = self._inside(found.with_name(found.name + ".headers.json"))
        if sidecar is None:
            return {}
        try:
            doc = json.loads(sidecar.read_bytes())
        except (OSError, ValueError, RecursionError):
            raise COLLATERAL_BUNDLE_INVALID(f"recorded headers for {url} are not JSON") from None
        if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
            raise COLLATERAL_BUNDLE_INVALID(f"recorded headers for {url} must map names to strings")
        return {str(k): v for k, v in doc.items()}
