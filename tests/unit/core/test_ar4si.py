"""AR4SI trustworthiness values: the constants against the registry of draft-ietf-rats-ar4si §2.3.4 (the same
table veraison/ear ``trustclaim.go`` implements), the tier ranges, and waived claims."""

from __future__ import annotations

import pytest
from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import EarStatus, status_of, tier

# Transcribed from the registry: claim -> {value: tag}. General values (-1, 0, 1, 99) are valid for every claim.
GENERAL = {-1: "verifier_malfunction", 0: "no_claim", 1: "unexpected_evidence", 99: "crypto_failed"}
REGISTRY = {
    "instance-identity": {2: "recognized_instance", 96: "untrustworthy_instance", 97: "unrecognized_instance"},
    "configuration": {2: "approved_config", 3: "safe_config", 32: "unsafe_config", 96: "unsupportable_config"},
    "executables": {2: "approved_rt", 3: "approved_boot", 32: "unsafe_rt", 33: "unrecognized_rt",
                    96: "contraindicated_rt"},
    "file-system": {2: "approved_fs", 32: "unrecognized_fs", 96: "contraindicated_fs"},
    "hardware": {2: "genuine_hw", 32: "unsafe_hw", 96: "contraindicated_hw", 97: "unrecognized_hw"},
    "runtime-opaque": {2: "encrypted_rt", 32: "isolated_rt", 96: "visible_rt"},
    "storage-opaque": {2: "hw_encrypted_secrets", 32: "sw_encrypted_secrets", 96: "unencrypted_secrets"},
    "sourced-data": {2: "trusted_sources", 32: "untrusted_sources", 96: "contraindicated_sources"},
}  # fmt: skip

# Every constant the kinds use, with the claim it is meant for.
CONSTANTS = [
    ("instance-identity", "IDENTITY_TRUSTED", 2), ("instance-identity", "IDENTITY_UNTRUSTED", 96),
    ("instance-identity", "IDENTITY_UNRECOGNIZED", 97),
    ("configuration", "CONFIG_APPROVED", 2), ("configuration", "CONFIG_NO_KNOWN_VULNS", 3),
    ("configuration", "CONFIG_UNSAFE", 32), ("configuration", "CONFIG_CONTRAINDICATED", 96),
    ("executables", "EXEC_APPROVED_RUNTIME", 2), ("executables", "EXEC_APPROVED_BOOT", 3),
    ("executables", "EXEC_UNSAFE_RUNTIME", 32), ("executables", "EXEC_UNRECOGNIZED", 33),
    ("executables", "EXEC_CONTRAINDICATED", 96),
    ("file-system", "FS_APPROVED", 2), ("file-system", "FS_UNRECOGNIZED", 32), ("file-system", "FS_CONTRAINDICATED", 96),
    ("hardware", "HW_GENUINE", 2), ("hardware", "HW_UNSAFE", 32), ("hardware", "HW_CONTRAINDICATED", 96),
    ("hardware", "HW_UNRECOGNIZED", 97),
    ("runtime-opaque", "RUNTIME_ENCRYPTED", 2), ("runtime-opaque", "RUNTIME_ISOLATED", 32),
    ("runtime-opaque", "RUNTIME_VISIBLE", 96), ("runtime-opaque", "RUNTIME_CONTRAINDICATED", 96),
    ("storage-opaque", "STORAGE_HW_KEYS", 2), ("storage-opaque", "STORAGE_SW_KEYS", 32),
    ("storage-opaque", "STORAGE_UNENCRYPTED", 96),
    ("sourced-data", "SOURCES_TRUSTED", 2), ("sourced-data", "SOURCES_UNTRUSTED", 32),
    ("sourced-data", "SOURCES_CONTRAINDICATED", 96),
]  # fmt: skip


def test_registry_matches_the_published_table() -> None:
    assert set(ar4si.REGISTERED) == set(REGISTRY) == set(ar4si.TV_CLAIMS)
    for claim, values in REGISTRY.items():
        assert ar4si.REGISTERED[claim] == frozenset(values) | frozenset(GENERAL), claim


@pytest.mark.parametrize(("claim", "name", "value"), CONSTANTS, ids=[c[1] for c in CONSTANTS])
def test_constants_are_registered_for_their_claim(claim: str, name: str, value: int) -> None:
    assert getattr(ar4si, name) == value and value in REGISTRY[claim]


def test_general_values() -> None:
    assert (ar4si.VERIFIER_MALFUNCTION, ar4si.NO_CLAIM, ar4si.UNEXPECTED_EVIDENCE, ar4si.CRYPTO_FAILED) == (
        -1,
        0,
        1,
        99,
    )
    # No unregistered leftovers (36 was never registered; 32 is not "visible memory").
    assert not hasattr(ar4si, "CONFIG_UNSUPPORTED") and not hasattr(ar4si, "HW_UNSUPPORTED")


@pytest.mark.parametrize(
    ("value", "status"),
    [(-1, "none"), (0, "none"), (1, "none"), (2, "affirming"), (31, "affirming"), (-2, "affirming"),
     (-32, "affirming"), (32, "warning"), (95, "warning"), (-33, "warning"), (-96, "warning"),
     (96, "contraindicated"), (127, "contraindicated"), (-97, "contraindicated"), (-128, "contraindicated")],
)  # fmt: skip
def test_tiers(value: int, status: str) -> None:
    assert tier(value).value == status


@pytest.mark.parametrize("value", [128, -129])
def test_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        tier(value)


def test_status_is_the_worst_claim_and_waivers_cap_at_warning() -> None:
    vector = {"hardware": 2, "executables": 33, "runtime-opaque": 96}
    assert status_of(vector) is EarStatus.CONTRAINDICATED
    assert status_of(vector, ("runtime-opaque",)) is EarStatus.WARNING
    assert status_of({"hardware": 2, "instance-identity": 0}) is EarStatus.AFFIRMING
    assert status_of({"hardware": 2, "configuration": -1}) is EarStatus.AFFIRMING
    with pytest.raises(ValueError, match="unknown trustworthiness claim"):
        status_of({"memory": 2})
