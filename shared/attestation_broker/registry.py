"""The explicit verifier registry, keyed by evidence kind, built once at cold start.

See docs/architecture.md "Verifier protocol".

Adding a kind means adding one line to :func:`default_verifiers`. Two verifiers claiming the same
kind is a programming error and fails when the registry is built.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from attestation_broker.errors import UNKNOWN_EVIDENCE_KIND, reflect
from attestation_broker.verifier import Verifier


class Registry(Mapping[str, Verifier]):
    def __init__(self, verifiers: Iterable[Verifier]) -> None:
        self._by_kind: dict[str, Verifier] = {}
        for verifier in verifiers:
            if verifier.kind in self._by_kind:
                raise RuntimeError(f"evidence kind {verifier.kind!r} registered twice")
            self._by_kind[verifier.kind] = verifier

    def __getitem__(self, kind: str) -> Verifier:
        return self._by_kind[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_kind))

    def __len__(self) -> int:
        return len(self._by_kind)

    def require(self, kind: str) -> Verifier:
        verifier = self._by_kind.get(kind)
        if verifier is None:
            raise UNKNOWN_EVIDENCE_KIND(f"unknown evidence kind {reflect(kind)}; supported: {', '.join(self)}")
        return verifier


def default_verifiers() -> list[Verifier]:
    """Every evidence kind the broker serves. Imported here, not at module top, so that importing the
    registry module stays cheap; the registry itself is built once per process at cold start."""
    from attestation_broker.evidence.azure_token.kind import AzureTokenVerifier
    from attestation_broker.evidence.azure_vtpm.kind import AzureVtpmVerifier
    from attestation_broker.evidence.gcp_token.kind import GcpTokenVerifier
    from attestation_broker.evidence.gcp_vtpm.kind import GcpVtpmVerifier
    from attestation_broker.evidence.nitro.kind import NitroVerifier
    from attestation_broker.evidence.nvidia_gpu.kind import NvidiaGpuVerifier
    from attestation_broker.evidence.nvidia_token.kind import NvidiaTokenVerifier
    from attestation_broker.evidence.snp.kind import SnpVerifier
    from attestation_broker.evidence.tdx.kind import TdxVerifier
    from attestation_broker.evidence.tpm.kind import TpmVerifier

    return [
        AzureTokenVerifier(),
        AzureVtpmVerifier(),
        GcpTokenVerifier(),
        GcpVtpmVerifier(),
        NitroVerifier(),
        NvidiaGpuVerifier(),
        NvidiaTokenVerifier(),
        SnpVerifier(),
        TdxVerifier(),
        TpmVerifier(),
    ]


def default_registry() -> Registry:
    return Registry(default_verifiers())
