"""End-to-end verification of every real SNP vector (pinned now), KDS collateral through the replay
server, and mutations of every signed region, chain and collateral input."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp import verify_snp_evidence
from attestation_broker.evidence.snp.abi import REPORT_SIZE
from attestation_broker.evidence.snp.checks import pinned_trust
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.support.context import offline_context, replay_context
from tests.support.errors import code_of
from tests.support.policy import decide, failed
from tests.support.vectors import vector
from tests.unit.snp.support import (
    CASE_BY_NAME,
    CASES,
    GENOA_CRL,
    MILAN_CRL,
    V4_REPORT,
    at,
    azure_cases,
    build_report,
    fake_amd,
    pem_to_der_crl,
)


def run(report: bytes, certs: list[bytes], now: datetime, **kw):
    ctx = kw.pop("ctx", None) or offline_context(now)
    kw.setdefault("expected_report_data", None)
    return verify_snp_evidence(report, certs, ctx, **kw)


def inputs(name: str) -> tuple[bytes, list[bytes], datetime]:
    case = CASE_BY_NAME[name]
    return vector(case.report), [vector(c) for c in case.certs] + [vector(case.crl)], at(case.now)


# --- positive: every real report that has its certificate --------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_real_vectors_verify(case) -> None:
    report, certs, now = inputs(case.name)
    result = run(report, certs, now)
    claims = result.attester_claims
    assert result.product == case.product and result.signing_key == case.signing_key
    assert claims["tee"] == "sev-snp"
    assert claims["measurement"].startswith(case.measurement_prefix)
    assert claims["dbgstat"] == ("enabled" if case.debug else "disabled")
    assert claims["tcb"]["status"] == "UpToDate"
    assert claims["snp"]["version"] == case.version and claims["snp"]["vmpl"] == case.vmpl
    assert result.verifier_claims["product"] == case.product
    kinds = [(c["type"], c["source"]) for c in result.verifier_claims["collateral"]]
    assert kinds == [(case.signing_key, "evidence"), ("crl", "evidence")]
    # facts: no measurement appraised yet → unrecognized (33, warning); debug guest → visible memory (96)
    assert result.trustworthiness_vector["executables"] == 33
    assert result.trustworthiness_vector["runtime-opaque"] == (96 if case.debug else 2)
    assert result.status.value == ("contraindicated" if case.debug else "warning")
    decision = decide(result.appraisal())
    assert failed(decision) == (["debug", "trustworthiness"] if case.debug else [])
    assert decision.appraisal.policy_ids[0].startswith("snp-default@sha256:")


@pytest.mark.parametrize("name,report,certs", azure_cases(), ids=lambda x: x if isinstance(x, str) else "")
def test_azure_hcl_carved_reports_verify(name, report, certs) -> None:
    genoa = "genoa" in name
    crl = vector(GENOA_CRL if genoa else MILAN_CRL)
    result = run(report, [*certs, crl], at("2025-06-01"))
    assert result.product == ("Genoa" if genoa else "Milan")
    # Azure binds SHA-256(runtime JSON) in the first half of REPORT_DATA; the second half is zero.
    assert result.attester_claims["report_data"].endswith("0" * 64)


def test_vlek_claims() -> None:
    result = run(*inputs("SNP-D3"))
    assert result.attester_claims["platform"] == "aws"
    assert result.attester_claims["snp"]["vlek_csp_id"] == "CN=cc-us-east-2.amazonaws.com"
    assert "chip_id" not in result.attester_claims["snp"]


def test_v5_claims() -> None:
    snp = run(*inputs("SNP-D6a")).attester_claims["snp"]
    assert (snp["launch_mit_vector"], snp["cpuid_fam_id"], snp["platform_info_bits"]["smt_en"]) == (0xB, 0x19, True)
    assert snp["chip_id"].startswith("980cf7b6") and snp["signing_key"] == "vcek"


# --- certificate inputs: table, PEM chain, DER, evidence ASK/ARK ---------------------------------------


def test_extended_report_cert_table() -> None:
    from tests.unit.snp.test_abi import VCEK_GUID, _table

    report, certs, now = inputs("SNP-D2")
    blob = report + _table([(VCEK_GUID.bytes_le, certs[0])])
    assert run(blob, [certs[1]], now).signing_key == "vcek"


def test_evidence_ark_is_not_a_trust_anchor() -> None:
    # A full chain (VCEK + ASK + ARK) from the evidence verifies only because ASK/ARK equal the pinned ones;
    # an evidence chain from another product's ARK does not help.
    report, certs, now = inputs("SNP-D4")
    run(report, certs, now)
    genoa_chain = vector("roots/amd/ask_ark_genoa.pem")
    d2 = inputs("SNP-D2")
    assert run(d2[0], [*d2[1], genoa_chain], d2[2]).product == "Milan"


# --- collateral through the replay server (real fetch + URL building) -----------------------------------


def test_kds_vcek_and_crl_fetched(replay) -> None:
    report, _certs, now = inputs("SNP-D2")
    vcek_path = (
        "/vcek/v1/Milan/c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4a"
        "adfb4426205a3b9e4fea82301135a170e477524e?blSPL=03&teeSPL=00&snpSPL=08&ucodeSPL=115"
    )
    replay.add(vcek_path, vector("snp/trustee-milan-v2/test-vcek.der"))
    replay.add("/vcek/v1/Milan/crl", pem_to_der_crl(vector(MILAN_CRL)))
    ctx = replay_context(replay.base_url, now)
    result = run(report, [], now, ctx=ctx, product="Milan")
    assert replay.requests == [vcek_path, "/vcek/v1/Milan/crl"]
    vcek, crl = result.verifier_claims["collateral"]
    assert (vcek["source"], vcek["url"]) == ("origin", replay.base_url + vcek_path)
    assert (crl["issued"], crl["next_update"]) == ("2025-05-06T12:39:06Z", "2026-05-12T00:00:00Z")
    # warm: everything from memory, no new requests
    again = run(report, [], now, ctx=ctx, product="Milan")
    assert len(replay.requests) == 2
    assert [c["source"] for c in again.verifier_claims["collateral"]] == ["memory", "memory"]


def test_kds_vlek_crl_path(replay) -> None:
    report, certs, now = inputs("SNP-D3")
    replay.add("/vlek/v1/Milan/crl", pem_to_der_crl(vector(MILAN_CRL)))
    run(report, certs[:1], now, ctx=replay_context(replay.base_url, now))
    assert replay.requests == ["/vlek/v1/Milan/crl"]


def test_v4_without_certificate_offline() -> None:
    assert code_of(run, vector(V4_REPORT), [vector(MILAN_CRL)], at("2026-01-01")) == "COLLATERAL_UNAVAILABLE"


def test_v4_without_certificate_kds_404(replay) -> None:
    now = at("2026-01-01")
    code = code_of(run, vector(V4_REPORT), [], now, ctx=replay_context(replay.base_url, now))
    assert code == "COLLATERAL_NOT_FOUND"
    assert replay.requests == [
        "/vcek/v1/Milan/12d937a2e0fa646929a42b83afe5b478d3987735e384a015707ec06898e17c0997bb872e0bbb72cfd71c50ca1560"
        "767ce1e198733e648c0ec03c2d67aac8c0b9?blSPL=04&teeSPL=00&snpSPL=25&ucodeSPL=219"
    ]


def test_kds_outage_is_503(replay) -> None:
    report, certs, now = inputs("SNP-D2")
    replay.add("/vcek/v1/Milan/crl", b"busy", status=503)
    with pytest.raises(BrokerError) as exc:
        run(report, certs[:1], now, ctx=replay_context(replay.base_url, now))
    assert exc.value.code.name == "COLLATERAL_UNAVAILABLE" and exc.value.status == 503


def test_kds_garbage_crl_rejected(replay) -> None:
    report, certs, now = inputs("SNP-D2")
    replay.add("/vcek/v1/Milan/crl", pem_to_der_crl(vector(GENOA_CRL)))  # signed by the wrong ARK
    assert code_of(run, report, certs[:1], now, ctx=replay_context(replay.base_url, now)) == "COLLATERAL_INVALID"


def test_v2_without_cert_needs_product(replay) -> None:
    report, _certs, now = inputs("SNP-D2")
    assert code_of(run, report, [], now, ctx=replay_context(replay.base_url, now)) == "SNP_PRODUCT_UNKNOWN"
    assert replay.requests == []


# --- mutations of the signed region ---------------------------------------------------------------------

SIGNED_FIELDS = {
    "GUEST_SVN": 0x004,
    "POLICY": 0x008,
    "FAMILY_ID": 0x010,
    "IMAGE_ID": 0x020,
    "VMPL": 0x030,
    "CURRENT_TCB": 0x038,
    "PLATFORM_INFO": 0x040,
    "REPORT_DATA": 0x050,
    "MEASUREMENT": 0x090,
    "HOST_DATA": 0x0C0,
    "ID_KEY_DIGEST": 0x0E0,
    "AUTHOR_KEY_DIGEST": 0x110,
    "REPORT_ID": 0x140,
    "REPORT_ID_MA": 0x160,
    "REPORTED_TCB": 0x180,
    "CPUID_STEP": 0x18A,
    "CHIP_ID": 0x1A0,
    "CHIP_ID_END": 0x1DF,
    "COMMITTED_TCB": 0x1E0,
    "CURRENT_BUILD": 0x1E8,
    "COMMITTED_MAJOR": 0x1EE,
    "LAUNCH_TCB": 0x1F0,
    "LAUNCH_MIT_VECTOR": 0x1F8,
    "CURRENT_MIT_VECTOR": 0x207,
    "SIG_R": 0x2A0,
    "SIG_S": 0x2E8,
    "SIG_S_END": 0x32F,
}


@pytest.mark.parametrize("case_name", ["SNP-D2", "SNP-D3", "SNP-D5", "SNP-D6a"])
@pytest.mark.parametrize("field", sorted(SIGNED_FIELDS))
def test_flip_signed_byte(case_name, field) -> None:
    report, certs, now = inputs(case_name)
    data = bytearray(report)
    data[SIGNED_FIELDS[field]] ^= 0x01
    version = CASE_BY_NAME[case_name].version
    reserved = (field == "CPUID_STEP" and version < 3) or ("MIT_VECTOR" in field and version < 5)
    expected = "SNP_REPORT_RESERVED_NONZERO" if reserved else "SNP_SIGNATURE_INVALID"
    assert code_of(run, bytes(data), certs, now) == expected


def test_flip_version_and_signing_key() -> None:
    report, certs, now = inputs("SNP-D2")
    data = bytearray(report)
    data[0] = 3  # v2 → v3: CPUID bytes are zero → unknown product
    assert code_of(run, bytes(data), certs, now) == "SNP_PRODUCT_UNKNOWN"
    data = bytearray(report)
    data[0x48] |= 0x04  # SIGNING_KEY VCEK → VLEK
    assert code_of(run, bytes(data), certs, now) == "SNP_SIGNING_KEY_MISMATCH"
    data = bytearray(report)
    data[0x48] |= 0x1C  # SIGNING_KEY 7 = none
    assert code_of(run, bytes(data), certs, now) == "SNP_SIGNING_KEY_UNSUPPORTED"
    data = bytearray(report)
    data[0x48] |= 0x02  # MASK_CHIP_KEY
    assert code_of(run, bytes(data), certs, now) == "SNP_SIGNING_KEY_UNSUPPORTED"


def test_flip_cpuid_model_changes_product() -> None:
    report, certs, now = inputs("SNP-D3")
    data = bytearray(report)
    data[0x189] = 0x11  # Milan → Genoa: the Milan VLEK cannot chain to the pinned Genoa ARK
    assert code_of(run, bytes(data), certs, now) == "CERT_CHAIN_INVALID"


# --- certificates ----------------------------------------------------------------------------------------


def test_swapped_vcek_vlek() -> None:
    d2, d3 = inputs("SNP-D2"), inputs("SNP-D3")
    assert code_of(run, d3[0], [d2[1][0], d3[1][1]], d3[2]) == "SNP_SIGNING_KEY_MISMATCH"
    assert code_of(run, d2[0], [d3[1][0], d2[1][1]], d2[2]) == "SNP_SIGNING_KEY_MISMATCH"


def test_other_chips_vcek() -> None:
    d2, d4 = inputs("SNP-D2"), inputs("SNP-D4")  # same TCB, different chips
    assert code_of(run, d2[0], [vector("snp/trustee-azure-milan-hcl/vcek.pem"), d2[1][1]], d2[2]) == (
        "SNP_SIGNATURE_INVALID"
    )
    assert d4  # both verify on their own (see test_real_vectors_verify)


def test_wrong_product_roots() -> None:
    # Genoa report + Genoa VCEK against a trust store whose only Genoa entry is Milan's hierarchy.
    from attestation_broker.evidence.snp.checks import AmdTrust

    milan_as_genoa = AmdTrust.from_pems({"Genoa": (vector("roots/amd/ask_ark_milan.pem"), None)})
    report, certs, now = inputs("SNP-D5")
    assert code_of(run, report, certs, now, trust=milan_as_genoa) == "CERT_CHAIN_INVALID"
    # Milan VCEK passed with a product hint of Genoa for a v2 report: chain to ARK-Genoa fails.
    d2 = inputs("SNP-D2")
    assert code_of(run, d2[0], d2[1], d2[2], product="Genoa") == "CERT_CHAIN_INVALID"


def test_vlek_expired() -> None:
    report, certs, _now = inputs("SNP-D3")
    assert code_of(run, report, certs, at("2026-11-22")) == "CERT_EXPIRED"


def test_expired_supplied_crl_ignored_offline() -> None:
    report, certs, _now = inputs("SNP-D2")
    assert code_of(run, report, certs, at("2026-05-13")) == "COLLATERAL_UNAVAILABLE"  # expired supplied CRL ignored


def test_crl_expired_from_kds(replay) -> None:
    report, certs, _now = inputs("SNP-D2")
    now = at("2026-06-01")  # after nextUpdate 2026-05-12
    replay.add("/vcek/v1/Milan/crl", pem_to_der_crl(vector(MILAN_CRL)))
    assert code_of(run, report, certs[:1], now, ctx=replay_context(replay.base_url, now)) == "COLLATERAL_EXPIRED"


def test_crl_not_yet_valid(replay) -> None:
    report, certs, _now = inputs("SNP-D2")
    now = at("2025-05-01")  # before thisUpdate 2025-05-06
    replay.add("/vcek/v1/Milan/crl", pem_to_der_crl(vector(MILAN_CRL)))
    assert code_of(run, report, certs[:1], now, ctx=replay_context(replay.base_url, now)) == "COLLATERAL_INVALID"


def test_genoa_crl_revokes_old_ask_serial() -> None:
    # The real Genoa CRL revokes serial 0x20001 (an old SEV-Genoa ASK); the current ASK is 0x20002.
    from attestation_broker.evidence.snp.checks import check_not_revoked, verify_crl

    roots = pinned_trust().roots("Genoa")
    crl = verify_crl(vector(GENOA_CRL), roots)
    assert 0x20001 in crl.revoked
    check_not_revoked(crl, roots.ask)


# --- TEST-ONLY hierarchy: checks that need a valid signature over a doctored relationship ----------------

TURIN_TCB = {"fmc": 1, "bootloader": 2, "tee": 3, "snp": 4, "microcode": 5}
CHIP = bytes.fromhex("1e550a8ee5cf9f4d") + bytes(56)
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def fake_run(report: bytes, certs: list[bytes], **kw):
    return run(report, certs, kw.pop("now", NOW), trust=fake_amd().trust, **kw)


def test_fake_turin_verifies() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB)
    result = fake_run(build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [vcek, amd.crl()])
    assert result.product == "Turin"
    assert result.attester_claims["tcb"] == {
        "status": "UpToDate",
        "bootloader": 2,
        "tee": 3,
        "snp": 4,
        "microcode": 5,
        "fmc": 1,
    }


def test_fake_turin_kds_url(replay) -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB)
    path = "/vcek/v1/Turin/1e550a8ee5cf9f4d?fmcSPL=01&blSPL=02&teeSPL=03&snpSPL=04&ucodeSPL=05"
    replay.add(path, vcek)
    replay.add("/vcek/v1/Turin/crl", amd.crl())
    fake_run(build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [], ctx=replay_context(replay.base_url, NOW))
    assert replay.requests == [path, "/vcek/v1/Turin/crl"]


def test_fake_chip_id_mismatch() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(b"\x01" * 64, TURIN_TCB)
    assert code_of(fake_run, build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [vcek, amd.crl()]) == (
        "SNP_CHIP_ID_MISMATCH"
    )


def test_fake_tcb_mismatch() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, {**TURIN_TCB, "fmc": 2})
    assert code_of(fake_run, build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [vcek, amd.crl()]) == "SNP_TCB_MISMATCH"


def test_fake_revoked_ask() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB)
    report = build_report(key, chip_id=CHIP, tcb=TURIN_TCB)
    assert code_of(fake_run, report, [vcek, amd.crl(revoked=(amd.ask.serial_number,))]) == "CERT_REVOKED"


def test_fake_crl_signed_by_other_key_ignored_then_unavailable() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB)
    report = build_report(key, chip_id=CHIP, tcb=TURIN_TCB)
    forged = amd.crl(key=amd.ask_key)
    assert code_of(fake_run, report, [vcek, forged]) == "COLLATERAL_UNAVAILABLE"


def test_fake_rotated_ask_from_evidence() -> None:
    # A new ASK signed by the pinned ARK may come with the evidence; one signed by anyone else may not.
    amd = fake_amd()
    new_key, new_ask = amd.intermediate("SEV-Turin-2", 0x30002)
    key, vcek = amd.vcek(CHIP, TURIN_TCB, issuer=new_ask, issuer_key=new_key)
    report = build_report(key, chip_id=CHIP, tcb=TURIN_TCB)
    ask_der = new_ask.public_bytes(serialization.Encoding.DER)
    assert fake_run(report, [vcek, ask_der, amd.crl()]).verifier_claims["intermediate"]["pinned"] is False
    assert code_of(fake_run, report, [vcek, amd.crl()]) == "CERT_CHAIN_INVALID"
    assert code_of(fake_run, report, [vcek, ask_der, amd.crl(revoked=(0x30002,))]) == "CERT_REVOKED"
    other = fake_amd("Genoa")  # same-named ASK under a different ARK
    rogue_key, rogue_ask = other.intermediate("SEV-Turin-2", 0x30002)
    key2, vcek2 = amd.vcek(CHIP, TURIN_TCB, issuer=rogue_ask, issuer_key=rogue_key)
    report2 = build_report(key2, chip_id=CHIP, tcb=TURIN_TCB)
    rogue = [
        vcek2,
        rogue_ask.public_bytes(serialization.Encoding.DER),
        other.ark.public_bytes(serialization.Encoding.DER),
    ]
    assert code_of(fake_run, report2, [*rogue, amd.crl()]) == "CERT_CHAIN_INVALID"


def test_fake_vcek_expired() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB, not_after=datetime(2025, 1, 1, tzinfo=UTC))
    assert code_of(fake_run, build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [vcek, amd.crl()]) == "CERT_EXPIRED"


def test_fake_product_name_mismatch() -> None:
    amd = fake_amd()
    key, vcek = amd.vcek(CHIP, TURIN_TCB, product_name="Genoa")
    assert code_of(fake_run, build_report(key, chip_id=CHIP, tcb=TURIN_TCB), [vcek, amd.crl()]) == (
        "SNP_PRODUCT_MISMATCH"
    )


# --- binding ----------------------------------------------------------------------------------------------


def test_nonce_binding_real_vector() -> None:
    report, certs, now = inputs("SNP-D6c")
    binding = ExpectedBinding(
        nonce=bytes.fromhex("df82306ff38a9da023854af947d02a878cfab1b40a793823ff41dc51213b96aa"),
        user_data=bytes.fromhex("03a8107030fabeac06b0df4ef865763918b5e2a9fa030e20025a4315dab4b2a6"),
    )
    result = run(report, certs, now, expected_report_data=binding.report_data())
    assert result.verifier_claims["bindings"] == {"nonce": "checked"}
    wrong = ExpectedBinding(nonce=b"\x00" * 32)
    assert code_of(run, report, certs, now, expected_report_data=wrong.report_data()) == "NONCE_BINDING_MISMATCH"
    assert run(report, certs, now).verifier_claims["bindings"] == {"nonce": "not-requested"}


def test_malformed_certificate_input() -> None:
    report, _certs, now = inputs("SNP-D2")
    assert code_of(run, report, [b"not a certificate"], now) == "SNP_CERTIFICATE_MALFORMED"
    assert code_of(run, report, [b"\x30\x03\x02\x01\x00"], now) == "SNP_CERTIFICATE_MALFORMED"


def test_oversized_and_truncated_through_pipeline() -> None:
    report, certs, now = inputs("SNP-D2")
    assert code_of(run, report[: REPORT_SIZE - 1], certs, now) == "SNP_REPORT_TRUNCATED"
    assert code_of(run, report + b"\xff" * 10, certs, now) == "SNP_REPORT_TRAILING_DATA"
    assert run(report + bytes(1000), certs, now).report.raw == report


def test_ark_subject_in_crl_checked() -> None:
    crl = x509.load_pem_x509_crl(vector(MILAN_CRL))
    assert crl.issuer == pinned_trust().roots("Milan").ark.subject
