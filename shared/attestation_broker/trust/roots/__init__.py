"""Pinned vendor roots shipped as package data (docs/architecture.md "Trust and collateral").

Each vendor folder under ``attestation_broker/trust/roots/`` holds certificate files and a ``MANIFEST.json``:
``{"files": {"<name>": {"sha256": "<hex>", "source": "<url>", "retrieved": "<date>", "note": "..."}}}``.
:func:`root_bytes` refuses any file whose SHA-256 differs from its manifest entry, so a root can only
change together with its recorded provenance. Roots are read through ``importlib.resources``.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from importlib import resources

from cryptography import x509

from attestation_broker.errors import CONFIG_INVALID

_PACKAGE = "attestation_broker.trust.roots"


@cache
def manifest(vendor: str) -> dict[str, dict[str, str]]:
    try:
        text = resources.files(_PACKAGE).joinpath(vendor, "MANIFEST.json").read_text()
    except FileNotFoundError:
        raise CONFIG_INVALID(f"no pinned roots for {vendor}") from None
    files = json.loads(text)["files"]
    return {str(k): dict(v) for k, v in files.items()}


@cache
def root_bytes(vendor: str, name: str) -> bytes:
    entry = manifest(vendor).get(name)
    if entry is None:
        raise CONFIG_INVALID(f"{vendor}/{name} is not in the roots manifest")
    data = resources.files(_PACKAGE).joinpath(vendor, name).read_bytes()
    if hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise CONFIG_INVALID(f"{vendor}/{name} does not match its pinned SHA-256")
    return data


def root_certificates(vendor: str, name: str) -> tuple[x509.Certificate, ...]:
    """All certificates in a pinned PEM (or single DER) file."""
    data = root_bytes(vendor, name)
    if b"-----BEGIN" in data:
        return tuple(x509.load_pem_x509_certificates(data))
    return (x509.load_der_x509_certificate(data),)
