"""gcp-vtpm: the real GCE attestation, Google AK certificates, TEE composition and mutations."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from attestation_broker.appraisal import EarStatus
from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import COLLATERAL_UNAVAILABLE, BrokerError
from attestation_broker.evidence.gcp_vtpm import GcpVtpmVerifier, proto
from attestation_broker.evidence.gcp_vtpm.abi import parse_attestation, snp_report_bytes, tdx_quote_bytes
from attestation_broker.evidence.gcp_vtpm.akcert import aia_issuer_urls, decode_identity, load_cert, verify_ak_cert
from attestation_broker.trust.fetch import FetchResponse
from attestation_broker.verifier import Submission, VerifyContext
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from tests.support.context import http_context, offline_context, replay_context
from tests.support.errors import raised_code
from tests.support.policy import decide, failed
from tests.support.replay import ReplayServer
from tests.support.vectors import vector
from tests.unit.gcp_vtpm.tee_proto import snp_attestation_message, snp_report_message, tdx_quote_message

PB = "gcp/gce-cos-85-nonce9009.attestation.pb"
NOW = datetime(2026, 11, 22, tzinfo=UTC)  # GCE AK certs and CAs are valid until 2051+ (manifest)
INTERMEDIATE_2 = "gcp/gce-ca-tpm_ek_intermediate_2.crt"
AIA_2 = "https://pki.goog/cloud_integrity/tpm_ek_intermediate_2.crt"


class DictFetcher:
    """A Fetcher serving fixed URLs (the AIA URLs are absolute Google URLs); records requests."""

    def __init__(self, routes: dict[str, bytes]) -> None:
        self.routes = routes
        self.requests: list[str] = []

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        self.requests.append(url)
        if url not in self.routes:
            raise COLLATERAL_UNAVAILABLE(f"not served: {url}")
        return FetchResponse(url, self.routes[url])


def verify(
    evidence: bytes, *extras: bytes, context: VerifyContext | None = None, binding: ExpectedBinding | None = None
):  # type: ignore[no-untyped-def]
    return GcpVtpmVerifier().verify(Submission(evidence, extras, binding=binding), context or offline_context(NOW))


def message() -> Any:
    return proto.decode_attestation(vector(PB))


# ------------------------------------------------------------------------------------------- positive


def test_real_gce_attestation_verifies() -> None:
    appraisal = verify(vector(PB), vector(INTERMEDIATE_2))
    claims = appraisal.attester_claims
    assert claims["tee"] == "vtpm" and claims["platform"] == "gcp"
    assert claims["instance"] == {
        "id": "6797026933021542085",
        "name": "cos-test",
        "project": "google.com:wuale-gcp-testing",
        "project_number": "117478743145",
        "zone": "us-central1-a",
    }
    tpm = claims["tpm"]
    assert tpm["quoted_banks"] == ["sha1", "sha256", "sha384"]
    assert tpm["pcr_bank"] == "sha256" and tpm["extra_data"] == "9009"
    assert claims["measurement"] == tpm["pcr_digest"]
    assert set(tpm["pcrs"]) == {"sha1", "sha256", "sha384"} and tpm["pcrs"]["sha256"]["17"] == "ff" * 32
    assert tpm["secure_boot"]["enabled"] is True
    assert 10 not in tpm["event_log_pcrs"] and {0, 4, 7, 9, 14}.issubset(tpm["event_log_pcrs"])
    assert claims["gcp"]["ak_root"] == "tpm_ek_root_1.cer" and claims["gcp"]["is_production"] is True
    assert appraisal.verifier_claims["bindings"] == {"nonce": "not-requested"}
    assert appraisal.trustworthiness_vector == {"instance-identity": 2, "configuration": 2, "executables": 33}
    assert appraisal.status is EarStatus.WARNING  # no PCR reference value appraised
    assert appraisal.policy_ids == ()
    assert failed(decide(appraisal, None, now=NOW)) == []


def test_text_format_evidence_verifies() -> None:
    from google.protobuf import text_format

    text = text_format.MessageToString(message()).encode()
    assert verify(text, vector(INTERMEDIATE_2)).attester_claims["instance"]["name"] == "cos-test"


def test_intermediate_from_attestation_field() -> None:
    msg = message()
    msg.intermediate_certs.append(vector(INTERMEDIATE_2))
    assert verify(msg.SerializeToString()).attester_claims["gcp"]["ak_root"] == "tpm_ek_root_1.cer"


def test_intermediate_fetched_from_aia_through_the_cache() -> None:
    fetcher = DictFetcher({AIA_2: vector(INTERMEDIATE_2)})
    context = http_context(NOW, fetcher=fetcher)
    appraisal = verify(vector(PB), context=context)
    assert fetcher.requests == [AIA_2]
    assert appraisal.verifier_claims["collateral"] == [
        {"type": "google_ak_intermediate", "url": AIA_2, "source": "origin", "stale": False}
    ]
    verify(vector(PB), context=context)  # second time from memory
    assert fetcher.requests == [AIA_2]


def test_missing_intermediate_offline_is_unavailable() -> None:
    with pytest.raises(BrokerError) as exc:
        verify(vector(PB))
    assert raised_code(exc) == "COLLATERAL_UNAVAILABLE" and exc.value.status == 503


def test_policy_rules_over_instance_and_pcrs() -> None:
    appraisal = verify(vector(PB), vector(INTERMEDIATE_2))
    pcrs = appraisal.attester_claims["tpm"]["pcrs"]["sha256"]
    rules = {
        "claims": {
            "instance.project": ["google.com:wuale-gcp-testing"],
            "instance.zone": ["us-central1-a"],
            "instance.id": ["6797026933021542085"],
        },
        "conditions": [{"name": "secure-boot", "expr": "claims.tpm.secure_boot.enabled"}],
        "reference_values": [
            {"label": "cos", "claims": {"tpm.pcrs.sha256.0": pcrs["0"], "tpm.pcrs.sha256.7": pcrs["7"]}}
        ],
    }
    decision = decide(appraisal, rules, now=NOW)
    assert failed(decision) == [] and decision.status is EarStatus.AFFIRMING
    assert decision.appraisal.trustworthiness_vector["executables"] == 3
    for bad, rule in (
        ({"claims": {"instance.project": ["other"]}}, "claims.instance.project"),
        ({"claims": {"instance.zone": ["europe-west4-a"]}}, "claims.instance.zone"),
        ({"claims": {"instance.id": ["1"]}}, "claims.instance.id"),
        ({"claims": {"tee": ["sev-snp", "tdx"]}}, "claims.tee"),
        ({"reference_values": [{"label": "x", "claims": {"tpm.pcrs.sha256.7": "00" * 32}}]}, "reference_values"),
    ):
        assert failed(decide(appraisal, bad, now=NOW)) == [rule], bad


def test_ima_pcr_is_not_replayed_from_the_firmware_log() -> None:
    # PCR10 (IMA) is not in the firmware log: the kind exempts it, and says so in the claims.
    tpm = verify(vector(PB), vector(INTERMEDIATE_2)).attester_claims["tpm"]
    assert 10 not in tpm["event_log_pcrs"] and 10 in tpm["pcr_selection"]


# ------------------------------------------------------------------------------------------ bindings


def test_requested_nonce_must_be_in_extra_data() -> None:
    # The recorded quote carries extraData 0x9009 (gotpm --nonce), not SHA-256(nonce ‖ user data).
    with pytest.raises(BrokerError) as exc:
        verify(vector(PB), vector(INTERMEDIATE_2), binding=ExpectedBinding(b"\x90\x09"))
    assert raised_code(exc) == "NONCE_BINDING_MISMATCH"


# ---------------------------------------------------------------------------------------- mutations


def _mutate(fn: Any) -> bytes:
    msg = message()
    fn(msg)
    return bytes(msg.SerializeToString())


def _flip(data: bytes, offset: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1
    return bytes(out)


@pytest.mark.parametrize(
    ("what", "mutation", "expected"),
    [
        ("quote body", lambda m: setattr(m.quotes[1], "quote", _flip(m.quotes[1].quote, 40)), "TPM_SIGNATURE_INVALID"),
        (
            "quote signature",
            lambda m: setattr(m.quotes[0], "raw_sig", _flip(m.quotes[0].raw_sig, 60)),
            "TPM_SIGNATURE_INVALID",
        ),
        ("pcr value", lambda m: m.quotes[1].pcrs.pcrs.__setitem__(3, b"\x00" * 32), "TPM_PCR_DIGEST_MISMATCH"),
        ("ak modulus", lambda m: setattr(m, "ak_pub", _flip(m.ak_pub, 100)), "GCP_VTPM_AK_MISMATCH"),
        ("no ak cert", lambda m: m.ClearField("ak_cert"), "GCP_VTPM_AK_CERT_MISSING"),
        ("ak cert bytes", lambda m: setattr(m, "ak_cert", _flip(m.ak_cert, 700)), None),
        ("duplicate bank", lambda m: m.quotes.append(m.quotes[1]), "GCP_VTPM_QUOTES_INCONSISTENT"),
        ("no quotes", lambda m: m.ClearField("quotes"), "GCP_VTPM_NO_QUOTES"),
        ("event digest", lambda m: setattr(m, "event_log", _flip(m.event_log, 2000)), "TPM_EVENTLOG_"),
        (
            "instance info",
            lambda m: (setattr(m.instance_info, "zone", "us-east1-b"), setattr(m.instance_info, "instance_name", "x")),
            "GCP_VTPM_INSTANCE_INFO_MISMATCH",
        ),
    ],
)
def test_mutations(what: str, mutation: Any, expected: str | None) -> None:
    with pytest.raises(BrokerError) as exc:
        verify(_mutate(mutation), vector(INTERMEDIATE_2))
    if expected is None:  # a flipped certificate byte: unparsable, bad signature or key mismatch
        assert exc.value.status in (400, 403), what
    else:
        assert raised_code(exc).startswith(expected), what


def test_matching_instance_info_is_accepted() -> None:
    def fill(m: Any) -> None:
        i = m.instance_info
        i.zone, i.project_id, i.project_number = "us-central1-a", "google.com:wuale-gcp-testing", 117478743145
        i.instance_name, i.instance_id = "cos-test", 6797026933021542085

    assert verify(_mutate(fill), vector(INTERMEDIATE_2)).attester_claims["instance"]["name"] == "cos-test"


def _test_ca_cert_for(public_key: Any) -> tuple[bytes, bytes]:
    """A test-only CA and a certificate for ``public_key`` with the AK cert's usage."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test-only vTPM CA")])
    start = NOW - timedelta(days=1)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(name)
        .public_key(public_key)
        .serial_number(2)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=30))
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return leaf.public_bytes(Encoding.DER), ca.public_bytes(Encoding.DER)


def test_ak_cert_from_wrong_root() -> None:
    ak_key = load_cert(message().ak_cert).public_key()
    leaf, ca = _test_ca_cert_for(ak_key)
    evidence = _mutate(lambda m: setattr(m, "ak_cert", leaf))
    with pytest.raises(BrokerError) as exc:
        verify(evidence, ca, vector(INTERMEDIATE_2))
    assert raised_code(exc) == "CERT_CHAIN_INVALID"


def test_ak_cert_expired() -> None:
    with pytest.raises(BrokerError) as exc:
        verify(vector(PB), vector(INTERMEDIATE_2), context=offline_context(datetime(2051, 9, 1, tzinfo=UTC)))
    assert raised_code(exc) == "CERT_EXPIRED"


# ----------------------------------------------------------------------------- Google AK certificates

AK_CERTS = {
    # file: (pinned root, instance name, instance id)
    "gcp/gce-ekak-pca_tpm_rsa_sign_cert.pem": ("gcp_ek_ak_ca_root.crt", "cs-debug-pca", 218557372616137117),
    "gcp/gce-ekak-pca_tpm_ecc_sign_cert.pem": ("gcp_ek_ak_ca_root.crt", "cs-debug-pca", 218557372616137117),
    "gcp/gce-ekak-uca_tpm_rsa_sign_cert.pem": ("tpm_ek_root_1.cer", "cs-debug", 5780156274199835632),
}
INTERMEDIATES = (
    "gcp/gce-ca-tpm_ek_intermediate_2.crt",
    "gcp/gce-ca-tpm_ek_intermediate_3.crt",
    "gcp/gce-ca-gcp_ek_ak_ca_intermediate_v3.crt",
)


@pytest.mark.parametrize("name", sorted(AK_CERTS))
def test_google_ak_certificates_chain_and_identity(name: str) -> None:
    root, instance, instance_id = AK_CERTS[name]
    verified = verify_ak_cert(load_cert(vector(name)), [load_cert(vector(i)) for i in INTERMEDIATES], now=NOW)
    assert verified.root == root and len(verified.chain) == 3
    assert verified.identity is not None
    assert (verified.identity.instance_name, verified.identity.instance_id) == (instance, instance_id)
    assert verified.identity.project_id == "google.com:wuale-gcp-testing" and verified.identity.zone == "us-central1-a"
    with pytest.raises(BrokerError) as exc:
        verify_ak_cert(load_cert(vector(name)), [], now=NOW)
    assert raised_code(exc) == "CERT_CHAIN_INVALID"


@pytest.mark.parametrize("name", ["gcp/gce-ekak-pca_tpm_ecc_enc_cert.pem", "gcp/gce-ekak-uca_tpm_ecc_enc_cert.pem"])
def test_ek_certificates_are_not_signing_keys(name: str) -> None:
    with pytest.raises(BrokerError) as exc:
        verify_ak_cert(load_cert(vector(name)), [load_cert(vector(i)) for i in INTERMEDIATES], now=NOW)
    assert raised_code(exc) == "GCP_VTPM_AK_CERT_USAGE"


def test_identity_extension_strictness() -> None:
    good = bytes.fromhex(
        "306a0c0d75732d63656e7472616c312d6102051b5a475c690c1c676f6f676c652e636f6d3a7775616c652d6763702d"
        "74657374696e6702085e53e3fbbf8306c50c08636f732d74657374a020301ea003020100a1030101ffa203010100a3"
        "03010100a403010100a503010100"
    )
    ident = decode_identity(good)
    assert ident.instance_id == 6797026933021542085 and ident.security is not None
    assert ident.security.is_production is True and ident.security.security_version == 0
    from attestation_broker.evidence.gcp_vtpm.der import DerError

    for bad in (good[:-1], good + b"\x00", b"\x31" + good[1:], good.replace(b"\x0c\x08cos", b"\x04\x08cos")):
        with pytest.raises(DerError):
            decode_identity(bad)


# ------------------------------------------------------------------------------------ TEE composition

SNP_DIR = "snp/teekit-gcp-milan-v5/"
NOW_SNP = datetime(2026, 1, 15, tzinfo=UTC)  # VCEK from 2025-12-05; Milan CRL until 2026-05-12


@pytest.mark.parametrize(
    "name",
    [
        "snp/teekit-gcp-milan-v5/sev-gcp.bin",
        "snp/openpcc-gce-milan-v4/snp-report.derived.bin",
        "snp/trustee-milan-v2/test-report.bin",
    ],
)
def test_snp_report_round_trip(name: str) -> None:
    raw = vector(name)[:1184]
    assert snp_report_bytes(snp_report_message(raw)) == raw


@pytest.mark.parametrize("name", ["gcp/gcp-tdx-quote-gotpm.b64", "tdx/go-tdx-guest-gcp-cos113/cos-113-tdx-quote.dat"])
def test_tdx_quote_round_trip(name: str) -> None:
    data = vector(name)
    raw = base64.b64decode(data) if name.endswith(".b64") else data
    assert tdx_quote_bytes(tdx_quote_message(raw)) == raw


def _with_snp(report: str, *, keep_log: bool) -> bytes:
    """The real GCE quotes with a real GCE SEV-SNP report attached (no public sample has both)."""
    vcek = x509.load_pem_x509_certificate(vector(SNP_DIR + "sev-gcp-vcek.pem")).public_bytes(Encoding.DER)

    def attach(m: Any) -> None:
        m.sev_snp_attestation.CopyFrom(snp_attestation_message(vector(SNP_DIR + report), vcek))
        m.intermediate_certs.append(vector(INTERMEDIATE_2))
        if not keep_log:
            m.ClearField("event_log")

    return _mutate(attach)


def test_snp_part_is_verified_by_the_snp_verifier(replay: ReplayServer) -> None:
    appraisal = verify(_with_snp("sev-gcp.bin", keep_log=False), context=snp_context(replay))
    claims = appraisal.attester_claims
    assert claims["tee"] == "sev-snp" and claims["platform"] == "gcp"
    assert claims["snp"]["vmpl"] == 0 and claims["snp"]["version"] == 5
    assert claims["measurement"] == claims["snp"].get("measurement", claims["measurement"])
    assert claims["tpm"]["extra_data"] == "9009"
    assert appraisal.verifier_claims["bindings"] == {"nonce": "not-requested", "tee_report": "unbound"}
    assert appraisal.policy_ids == ()
    assert appraisal.trustworthiness_vector["hardware"] == 2
    assert any(c["type"] == "crl" for c in appraisal.verifier_claims["collateral"])
    assert "TEE report not bound to a broker nonce (no nonce requested)" in appraisal.findings


def test_snp_signature_tamper(replay: ReplayServer) -> None:
    def tamper(m: Any) -> None:
        m.sev_snp_attestation.report.measurement = _flip(m.sev_snp_attestation.report.measurement, 0)

    evidence = proto.decode_attestation(_with_snp("sev-gcp.bin", keep_log=False))
    tamper(evidence)
    with pytest.raises(BrokerError) as exc:
        verify(evidence.SerializeToString(), context=snp_context(replay))
    assert raised_code(exc).startswith("SNP_")


def test_shielded_vm_log_contradicts_snp_report(replay: ReplayServer) -> None:
    # The cos-85 log's GCE NonHostInfo says "not confidential": a SEV-SNP report cannot belong to it.
    with pytest.raises(BrokerError) as exc:
        verify(_with_snp("sev-gcp.bin", keep_log=True), context=snp_context(replay))
    assert raised_code(exc) == "GCP_VTPM_TEE_INCONSISTENT"


def test_snp_field_of_wrong_size() -> None:
    def bad(m: Any) -> None:
        m.sev_snp_attestation.report.CopyFrom(snp_report_message(vector(SNP_DIR + "sev-gcp.bin")))
        m.sev_snp_attestation.report.chip_id = b"\x00" * 63

    with pytest.raises(BrokerError) as exc:
        parse_attestation(_mutate(bad))
    assert raised_code(exc) == "GCP_VTPM_TEE_MALFORMED"


def test_tdx_part_reaches_the_tdx_verifier() -> None:
    raw = base64.b64decode(vector("gcp/gcp-tdx-quote-gotpm.b64"))

    def attach(m: Any) -> None:
        m.tdx_attestation.CopyFrom(tdx_quote_message(raw))
        m.intermediate_certs.append(vector(INTERMEDIATE_2))
        m.ClearField("event_log")

    att = parse_attestation(_mutate(attach))
    assert att.tdx_quote == raw
    # No Intel TCB collateral for this FMSPC is recorded: offline the TDX verifier asks PCS (503).
    with pytest.raises(BrokerError) as exc:
        verify(_mutate(attach))
    assert raised_code(exc) == "COLLATERAL_UNAVAILABLE"


def test_pinned_google_roots_are_the_published_ones() -> None:
    from attestation_broker.trust.roots import root_bytes

    assert root_bytes("google", "tpm_ek_root_1.cer") == vector("gcp/gce-ca-tpm_ek_root_1.cer")
    assert root_bytes("google", "gcp_ek_ak_ca_root.crt") == vector("gcp/gce-ca-gcp_ek_ak_ca_root.crt")


def snp_context(replay: ReplayServer) -> VerifyContext:
    """The SNP part fetches its VCEK and CRL from the loopback KDS replay."""
    crl = x509.load_pem_x509_crl(vector("roots/amd/amd_milan_vcek_crl.pem")).public_bytes(Encoding.DER)
    replay.add("/vcek/v1/Milan/crl", crl)
    return replay_context(replay.base_url, NOW_SNP)


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("http://privateca-content-abc.storage.googleapis.com/x/ca.crt", True),
        ("http://[privateca-content-abc.storage.googleapis.com/x/ca.crt", False),  # unbalanced IP-literal bracket
        ("http://[::1/ca.crt", False),
        ("ftp://pki.goog/ca.crt", False),
    ],
)
def test_aia_urls_that_do_not_parse_are_skipped(url: str, kept: bool) -> None:
    # Found by the fuzzer: urlsplit raises ValueError for an unbalanced "[" in an AK certificate's caIssuers URL.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ak")])
    now = datetime(2025, 1, 1, tzinfo=UTC)
    access = x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.AuthorityInformationAccess([access]), critical=False)
        .sign(key, hashes.SHA256())
    )
    assert aia_issuer_urls(cert) == ([url] if kept else [])
