"""``attestation-broker attest --kind gcp-vtpm`` against swtpm provisioned like a GCE vTPM: an AK template
(TPMT_PUBLIC, go-tpm-tools' RSA AK template) in NV 0x01c10001 and, in NV 0x01c10000, an AK certificate for
the key the TPM derives from it, issued by a TEST-ONLY Google-like CA with a GCE instance-identity extension.
On the Confidential VM variant a configfs-tsm TDX stand-in adds the TD quote bound to the same nonce.

Policy relied on: the default gcp-vtpm policy ``{}`` (and its default TEE policies). The test CA, AMD-like
and Intel-like roots reach the verifier only through ``GcpVtpmVerifier(trust=...)``.

Skipped on a developer machine without swtpm/tpm2-tools; FAILS under CI=true (tests/support/swtpm.py).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.client import AttestOptions, Machine, attest
from attestation_broker.client.collect import collect
from attestation_broker.client.gcp import GCE_AK_CERT_NV_RSA, GCE_AK_TEMPLATE_NV_RSA, parse_template
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.gcp_vtpm import proto
from attestation_broker.evidence.gcp_vtpm.kind import GcpVtpmVerifier
from attestation_broker.evidence.gcp_vtpm.pipeline import TrustOverride
from attestation_broker.evidence.tpm import load_ak_public
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.loopback_broker import loopback_broker
from tests.support.swtpm import Swtpm, swtpm_instance
from tests.support.vectors import vector
from tests.unit.client.platforms import replay_event_log, tdx_broker, tdx_platform
from tests.unit.tdx.support import FakeIntelPki

pytestmark = pytest.mark.swtpm

# go-tpm-tools client.AKTemplateRSA(): RSA-2048, SHA-256 name, fixedTPM|fixedParent|sensitiveDataOrigin|
# userWithAuth|restricted|sign, no policy, no symmetric, RSASSA-SHA256, default exponent, empty unique.
AK_TEMPLATE = struct.pack(">HHIH", 0x0001, 0x000B, 0x00050072, 0) + struct.pack(
    ">HHHHIH", 0x0010, 0x0014, 0x000B, 2048, 0, 0
)
GCE_INSTANCE_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.21")
GKE_LOG = "tpm/gce-eventlog-confidential-gke-debug-251000.bin"  # a real GCE firmware log (no TEE declared)
INSTANCE = ("us-central1-a", 1234567890, "test-project", 987654321, "test-vm")


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    head = bytes([size]) if size < 0x80 else bytes([0x81, size])
    return bytes([tag]) + head + body


def _int(value: int) -> bytes:
    return _tlv(0x02, value.to_bytes((value.bit_length() + 8) // 8, "big"))


def gce_identity() -> bytes:
    zone, number, project, instance_id, name = INSTANCE
    utf8 = lambda s: _tlv(0x0C, s.encode())  # noqa: E731
    return _tlv(0x30, utf8(zone) + _int(number) + utf8(project) + _int(instance_id) + utf8(name))


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TEST ONLY")]
    )


class GoogleLikeCa:
    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.root = (
            x509.CertificateBuilder()
            .subject_name(_name("Test EK/AK Root"))
            .issuer_name(_name("Test EK/AK Root"))
            .public_key(self.key.public_key())
            .serial_number(1)
            .not_valid_before(datetime(2020, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def ak_cert(self, public: object) -> bytes:
        from cryptography.hazmat.primitives.serialization import Encoding

        cert = (
            x509.CertificateBuilder()
            .subject_name(_name("test-vm AK"))
            .issuer_name(self.root.subject)
            .public_key(public)  # type: ignore[arg-type]
            .serial_number(2)
            .not_valid_before(datetime(2021, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime(2040, 1, 1, tzinfo=UTC))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.UnrecognizedExtension(GCE_INSTANCE_OID, gce_identity()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(Encoding.DER)


@pytest.fixture(scope="module")
def ca() -> GoogleLikeCa:
    return GoogleLikeCa()


@pytest.fixture(scope="module")
def gce(ca: GoogleLikeCa) -> Iterator[tuple[Swtpm, bytes]]:
    """swtpm provisioned as GCE provisions its vTPM; yields (tpm, the AK's TPM2B_PUBLIC as the TPM derives it)."""
    with swtpm_instance() as tpm:
        replay_event_log(tpm, vector(GKE_LOG))  # measured boot as GCE firmware recorded it
        # the AK as the TPM derives it from the template: made here with tpm2-tools directly, independently of
        # the client's template parsing
        tpm.run(
            "tpm2_createprimary",
            "-C",
            "e",
            "-g",
            "sha256",
            "-G",
            "rsa2048:rsassa-sha256:null",
            "-a",
            "0x00050072",
            "-c",
            "ak.ctx",
            "-o",
            "ak.pub",
        )
        tpm.flush()
        public = tpm.path("ak.pub").read_bytes()
        cert = ca.ak_cert(load_ak_public(public).key)
        for index, blob, name in (
            (GCE_AK_CERT_NV_RSA, cert, "cert.der"),
            (GCE_AK_TEMPLATE_NV_RSA, AK_TEMPLATE, "tmpl.bin"),
        ):
            tpm.path(name).write_bytes(blob)
            tpm.run(
                "tpm2_nvdefine",
                hex(index),
                "-C",
                "o",
                "-s",
                str(len(blob)),
                "-a",
                "ownerread|ownerwrite|authread|authwrite",
            )
            tpm.run("tpm2_nvwrite", hex(index), "-C", "o", "-i", name)
        yield tpm, public


def test_template_parse() -> None:
    t = parse_template(AK_TEMPLATE)
    assert (t.name_alg, t.key_alg, t.attributes, t.auth_policy) == (
        "sha256",
        "rsa2048:rsassa-sha256:null",
        0x00050072,
        b"",
    )
    with pytest.raises(BrokerError) as exc:
        parse_template(AK_TEMPLATE[:-2] + b"\x00\x01\xff")
    assert exc.value.code.name == "CLIENT_TPM_COMMAND_FAILED"


def test_gcp_vtpm_round_trip(tmp_path: Path, ca: GoogleLikeCa, gce: tuple[Swtpm, bytes]) -> None:
    tpm, _public = gce
    verifier = GcpVtpmVerifier(trust=TrustOverride(ak_roots=(("test-ak-root.cer", ca.root),)))
    with loopback_broker(tmp_path, verifiers=[verifier]) as broker:
        log = tmp_path / "binary_bios_measurements"
        log.write_bytes(vector(GKE_LOG))
        machine = Machine(tcti=tpm.tcti, tsm_root=tmp_path / "no-tsm", event_log=log)
        result = attest(
            AttestOptions(broker.url, user_data=b"k", machine=machine), clock=lambda: broker.harness.clock[0]
        )
    assert result.kind == "gcp-vtpm"  # detected from the AK certificate NV index
    sub = result.claims["submods"]["gcp-vtpm"]
    assert sub["ear_verifier_claims"]["bindings"]["nonce"] == "checked"
    attester = sub["ear_attester_claims"]
    assert attester["platform"] == "gcp"
    assert attester["gcp"]["ak_root"] == "test-ak-root.cer"
    # the firmware log was sent and replayed against the quoted PCRs (54 events in the GKE log)
    assert attester["tpm"]["event_count"] == 54 and 0 in attester["tpm"]["event_log_pcrs"]
    assert result.claims["ear_status"] in ("affirming", "warning")


def test_gcp_attestation_content_and_binding(tmp_path: Path, gce: tuple[Swtpm, bytes]) -> None:
    tpm, public = gce
    binding = ExpectedBinding(b"\x42" * 32, b"user")
    envelope = collect(
        "gcp-vtpm", binding, Machine(tcti=tpm.tcti, tsm_root=tmp_path / "none", event_log=tmp_path / "x")
    )
    att = proto.decode_attestation(base64.b64decode(envelope["evidence"]))
    assert att.ak_pub == public[2:]  # the client's template parsing re-created exactly the certified key
    banks = sorted(q.pcrs.hash for q in att.quotes)
    assert banks == [4, 11, 12, 13]  # one quote per allocated bank (swtpm: sha1, sha256, sha384, sha512)
    from attestation_broker.evidence.tpm.abi import parse_attest

    assert {parse_attest(q.quote).extra_data for q in att.quotes} == {binding.tpm_extra_data()}
    assert all(len(q.pcrs.pcrs) == 24 for q in att.quotes)


def test_gcp_confidential_vm_adds_the_tdx_quote(tmp_path: Path, ca: GoogleLikeCa, gce: tuple[Swtpm, bytes]) -> None:
    tpm, _public = gce
    pki = FakeIntelPki.create()
    root = tmp_path / "tsm"
    (root / "report").mkdir(parents=True)
    trust = TrustOverride(ak_roots=(("test-ak-root.cer", ca.root),), tdx=pki.trust)
    with tdx_broker(tmp_path, pki, verifiers=[GcpVtpmVerifier(trust=trust)]) as broker:
        machine = Machine(tcti=tpm.tcti, tsm_root=root, tsm_files=tdx_platform(pki), event_log=tmp_path / "none")
        result = attest(
            AttestOptions(broker.url, kind="gcp-vtpm", machine=machine), clock=lambda: broker.harness.clock[0]
        )
    sub = result.claims["submods"]["gcp-vtpm"]
    assert sub["ear_attester_claims"]["tee"] == "tdx"
    binding = ExpectedBinding(bytes.fromhex(result.nonce))
    assert sub["ear_attester_claims"]["report_data"] == binding.report_data().hex()
    assert sub["ear_verifier_claims"]["bindings"]["nonce"] == "checked"
