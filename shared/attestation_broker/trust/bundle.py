"""Collateral bundles: bring your own collateral, read-only, the same in the CLI and the server (docs/collateral.md).

A bundle is a directory with a manifest ``bundle.json``::

    {"format": "attestation-broker-collateral-bundle", "version": 1, "created": "<ISO 8601>",
     "objects": [{"key": "...", "file": "<relative path>", "type": "...", "source": "<where it came from>",
                  "sha256": "<hex of the file>", "headers": {...optional recorded response headers...}}]}

Keys do not depend on which upstream served an object, so a bundle made against Intel PCS works for a broker
configured with a PCCS, and the reverse:

* ``amd/vcek/v1/<product>/<hwid>?blSPL=..`` / ``amd/vlek/v1/<product>/crl`` ... — AMD KDS objects by their KDS
  path (VCEKs, CRLs, cert chains), files under ``amd/``;
* ``intel/tdx/<FMSPC>/<platform|processor>`` — everything a TDX quote of that FMSPC and PCK CA needs, as one
  dcap-qvl ``QuoteCollateralV3`` JSON document (TCB info and QE identity as (signed JSON, signature) pairs,
  both CRLs, the issuer chains), files under ``intel/tdx/``;
* ``url:<URL>`` — anything else (e.g. NVIDIA OCSP/RIM, JWKS) by its exact URL, files under ``url/``.

Nothing in a bundle is trusted: the cache hands bundle objects to the same verifiers as fetched ones, and a
bundle object past its validity is reported as expired (with its date). A file whose SHA-256 differs from the
manifest, a missing file or a malformed manifest is COLLATERAL_BUNDLE_INVALID.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from attestation_broker.errors import COLLATERAL_BUNDLE_INVALID
from attestation_broker.files import atomic_write

FORMAT = "attestation-broker-collateral-bundle"
VERSION = 1
MANIFEST = "bundle.json"
_AMD_MARKERS = ("/vcek/v1/", "/vlek/v1/")


def key_for_url(url: str) -> str:
    """The bundle key of a collateral URL (see the module docstring)."""
    parts = urllib.parse.urlsplit(url)
    for marker in _AMD_MARKERS:
        idx = parts.path.find(marker)
        if idx >= 0:
            return "amd" + parts.path[idx:] + (f"?{parts.query}" if parts.query else "")
    return "url:" + url


def tdx_key(fmspc: str, ca: str) -> str:
    return f"intel/tdx/{fmspc.upper()}/{ca}"


def _file_for(key: str) -> str:
    if key.startswith("url:"):
        return "url/" + hashlib.sha256(key.encode()).hexdigest()[:32]
    # Query strings become part of the file name in a portable way: '?' → '@', '&' → ','.
    safe = key.replace("?", "@").replace("&", ",")
    if key.startswith("intel/tdx/"):
        safe = safe.rsplit("/", 1)[0] + "-" + key.rsplit("/", 1)[1] + ".json"
    return safe


@dataclass(frozen=True)
class BundleObject:
    key: str
    file: str
    type: str
    source: str
    sha256: str
    headers: Mapping[str, str] = field(default_factory=dict)


class Bundle:
    """A read-only view of a bundle directory; files are read (and their digests checked) on lookup."""

    def __init__(self, root: Path, objects: Mapping[str, BundleObject], created: str = "") -> None:
        self.root = root
        self.objects = dict(objects)
        self.created = created

    @classmethod
    def is_bundle(cls, root: Path) -> bool:
        return (root / MANIFEST).is_file()

    @classmethod
    def open(cls, root: Path) -> Bundle:
        root = root.resolve()
        try:
            doc = json.loads((root / MANIFEST).read_bytes())
        except (OSError, ValueError, RecursionError) as exc:
            raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} is unreadable or not JSON ({type(exc).__name__})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
            raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} is not a version {VERSION} {FORMAT} manifest")
        items = doc.get("objects")
        if not isinstance(items, list):
            raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} 'objects' must be a list")
        objects: dict[str, BundleObject] = {}
        for item in items:
            if not isinstance(item, dict) or not all(
                isinstance(item.get(k), str) for k in ("key", "file", "type", "sha256")
            ):
                raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} objects need string key, file, type and sha256")
            headers = item.get("headers", {})
            if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
                raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} headers must map names to strings")
            if item["key"] in objects:
                raise COLLATERAL_BUNDLE_INVALID(f"{MANIFEST} names {item['key'][:100]!r} twice")
            objects[item["key"]] = BundleObject(
                item["key"], item["file"], item["type"], str(item.get("source", "")), item["sha256"], headers
            )
        return cls(root, objects, str(doc.get("created", "")))

    def read(self, key: str) -> tuple[bytes, BundleObject] | None:
        obj = self.objects.get(key)
        if obj is None:
            return None
        path = (self.root / obj.file).resolve()
        if not path.is_relative_to(self.root) or not path.is_file():
            raise COLLATERAL_BUNDLE_INVALID(f"bundle file for {key[:100]!r} is missing")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != obj.sha256:
            raise COLLATERAL_BUNDLE_INVALID(f"bundle file for {key[:100]!r} does not match its manifest digest")
        return data, obj

    def lookup_url(self, url: str) -> tuple[bytes, BundleObject] | None:
        return self.read(key_for_url(url))

    def tdx(self, fmspc: str, ca: str) -> tuple[bytes, BundleObject] | None:
        return self.read(tdx_key(fmspc, ca))

    def __iter__(self) -> Iterator[BundleObject]:
        return iter(self.objects.values())


class BundleWriter:
    """Builds or extends a bundle directory; :meth:`save` writes the manifest last (atomically)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.objects: dict[str, BundleObject] = {}
        if Bundle.is_bundle(root):
            self.objects = dict(Bundle.open(root).objects)

    def put(
        self, key: str, data: bytes, *, kind: str, source: str, headers: Mapping[str, str] | None = None
    ) -> BundleObject:
        name = _file_for(key)
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        obj = BundleObject(key, name, kind, source, hashlib.sha256(data).hexdigest(), dict(headers or {}))
        self.objects[key] = obj
        return obj

    def save(self) -> Path:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "objects": [
                {
                    "key": o.key,
                    "file": o.file,
                    "type": o.type,
                    "source": o.source,
                    "sha256": o.sha256,
                    **({"headers": dict(o.headers)} if o.headers else {}),
                }
                for o in sorted(self.objects.values(), key=lambda o: o.key)
            ],
        }
        path = self.root / MANIFEST
        atomic_write(path, (json.dumps(doc, indent=2) + "\n").encode())
        return path
