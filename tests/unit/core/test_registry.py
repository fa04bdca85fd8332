import pytest
from attestation_broker.registry import Registry, default_registry

from tests.support.broker import EchoTestVerifier

KINDS = [
    "azure-token",
    "azure-vtpm",
    "gcp-token",
    "gcp-vtpm",
    "nitro",
    "nvidia-gpu",
    "nvidia-token",
    "snp",
    "tdx",
    "tpm",
]


def test_default_registry_has_every_kind_once() -> None:
    registry = default_registry()
    assert list(registry) == KINDS
    assert all(registry[kind].kind == kind for kind in KINDS)


def test_duplicate_kind_fails_when_built() -> None:
    with pytest.raises(RuntimeError, match="registered twice"):
        Registry([EchoTestVerifier(), EchoTestVerifier()])


def test_unknown_kind_is_typed_404_listing_kinds() -> None:
    with pytest.raises(Exception) as info:
        default_registry().require("sgx")
    assert info.value.code.name == "UNKNOWN_EVIDENCE_KIND" and info.value.status == 404
    assert all(kind in info.value.detail for kind in KINDS)
