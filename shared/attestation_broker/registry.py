"""The explicit verifier registry, keyed by evidence kind, built once at cold start (docs/architecture.md).

Adding a kind means adding one line to :data:`DEFAULT_KINDS`. Two verifiers claiming the same kind is a
programming error and fails when the registry is built.

Verifiers are built on first use: the registry holds each kind's name and import path, and imports the kind's
module only when a request names it. A Lambda cold start thus pays for the one kind it serves, not for eight
(importing every kind took 100-200 ms, mostly parser tables and ASN.1/protobuf modules).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from attestation_broker.errors import UNKNOWN_EVIDENCE_KIND, reflect
from attestation_broker.verifier import Verifier


@dataclass(frozen=True)
class LazyVerifier:
    """A kind whose verifier class ``module:Class`` is imported and instantiated on first use."""

    kind: str
    target: str

    def build(self) -> Verifier:
        module, _, name = self.target.partition(":")
        verifier: Verifier = getattr(importlib.import_module(module), name)()
        if verifier.kind != self.kind:
            raise RuntimeError(f"{self.target} serves {verifier.kind!r}, registered as {self.kind!r}")
        return verifier


# Every evidence kind the broker serves.
DEFAULT_KINDS = (
    LazyVerifier("azure-token", "attestation_broker.evidence.azure_token.kind:AzureTokenVerifier"),
    LazyVerifier("azure-vtpm", "attestation_broker.evidence.azure_vtpm.kind:AzureVtpmVerifier"),
    LazyVerifier("gcp-token", "attestation_broker.evidence.gcp_token.kind:GcpTokenVerifier"),
    LazyVerifier("gcp-vtpm", "attestation_broker.evidence.gcp_vtpm.kind:GcpVtpmVerifier"),
    LazyVerifier("nitro", "attestation_broker.evidence.nitro.kind:NitroVerifier"),
    LazyVerifier("nvidia-gpu", "attestation_broker.evidence.nvidia_gpu.kind:NvidiaGpuVerifier"),
    LazyVerifier("nvidia-token", "attestation_broker.evidence.nvidia_token.kind:NvidiaTokenVerifier"),
    LazyVerifier("snp", "attestation_broker.evidence.snp.kind:SnpVerifier"),
    LazyVerifier("tdx", "attestation_broker.evidence.tdx.kind:TdxVerifier"),
    LazyVerifier("tpm", "attestation_broker.evidence.tpm.kind:TpmVerifier"),
)


class Registry(Mapping[str, Verifier]):
    def __init__(self, verifiers: Iterable[Verifier | LazyVerifier]) -> None:
        self._by_kind: dict[str, Verifier | LazyVerifier] = {}
        self._lock = threading.Lock()
        for verifier in verifiers:
            if verifier.kind in self._by_kind:
                raise RuntimeError(f"evidence kind {verifier.kind!r} registered twice")
            self._by_kind[verifier.kind] = verifier

    def __getitem__(self, kind: str) -> Verifier:
        entry = self._by_kind[kind]
        if not isinstance(entry, LazyVerifier):
            return entry
        with self._lock:  # one import + construction even when two requests race on a cold kind
            current = self._by_kind[kind]
            if isinstance(current, LazyVerifier):
                current = current.build()
                self._by_kind[kind] = current
            return current

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_kind))

    def __len__(self) -> int:
        return len(self._by_kind)

    def require(self, kind: str) -> Verifier:
        if kind not in self._by_kind:
            raise UNKNOWN_EVIDENCE_KIND(f"unknown evidence kind {reflect(kind)}; supported: {', '.join(self)}")
        return self[kind]


def default_verifiers() -> list[Verifier]:
    """Every default kind, built now (tests and tools that want them all; the broker uses the lazy registry)."""
    return [entry.build() for entry in DEFAULT_KINDS]


def default_registry() -> Registry:
    return Registry(DEFAULT_KINDS)
