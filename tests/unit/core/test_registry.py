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


LAZY_PROBE = """
import json, sys
from attestation_broker.registry import default_registry
registry = default_registry()
loaded = lambda: sorted({m.split(".")[2] for m in sys.modules if m.startswith("attestation_broker.evidence.")
                         and m.count(".") >= 2})
before = loaded()
kinds = list(registry)
verifier = registry.require("snp")
print(json.dumps({"before": before, "kinds": kinds, "after": loaded(), "kind": verifier.kind}))
"""


def test_verifiers_are_built_on_first_use() -> None:
    # A fresh interpreter: building the registry and listing kinds import no kind; naming one imports that one
    # (and what it uses), not the other kinds (Lambda cold start pays for the kind a request names).
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", LAZY_PROBE], capture_output=True, text=True, check=True).stdout
    doc = json.loads(out)
    assert doc["before"] == [] and doc["kinds"] == KINDS and doc["kind"] == "snp"
    assert "snp" in doc["after"]
    assert not {"tdx", "nitro", "gcp_vtpm", "azure_vtpm", "nvidia_gpu", "nvidia_token"} & set(doc["after"])


def test_lazy_entry_must_serve_its_kind() -> None:
    from attestation_broker.registry import LazyVerifier

    registry = Registry([LazyVerifier("tdx", "attestation_broker.evidence.snp.kind:SnpVerifier")])
    with pytest.raises(RuntimeError, match="registered as 'tdx'"):
        registry.require("tdx")
