"""``attestation-broker attest`` against swtpm for ``tpm`` and ``azure-vtpm``: the client drives a real
(software) TPM through tpm2-tools with ``--tcti``, the loopback broker verifies, the nonce round trip is real.

- ``tpm``: the AK comes from ``attest --print-ak --persist 0x81010002`` (the operator's path); policy
  relied on: ``ak_keys: [{label: ..., sha256: <printed pin>}]`` (docs/policy.md) — a pinned AK and no PCR
  reference value, which grades ``warning``.
- ``azure-vtpm``: swtpm stands in for the Azure vTPM: an RSA AK persisted at 0x81000003 (the HCL AK), NV
  0x01400001 defined and holding an HCL-layout TDX report whose runtime JSON names that AK, and a
  stand-in paravisor that regenerates the report when 0x01400002 is written (as the HCL does). The TD quote
  comes from an IMDS stand-in that re-signs the real Azure TD quote with the test-only Intel-like PKI the
  azure-vtpm tests use (tests/unit/azure_vtpm/synthetic_tdx.py). Policy relied on: the default azure-vtpm
  policy ``{}``.

Skipped on a developer machine without swtpm/tpm2-tools; FAILS under CI=true (tests/support/swtpm.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.cli import main
from attestation_broker.client import AttestOptions, Machine, attest
from attestation_broker.client.collect import (
    AZURE_AK_HANDLE,
    AZURE_HCL_REPORT_NV,
    AZURE_USER_DATA_NV,
    ImdsFetch,
    collect,
)
from attestation_broker.client.errors import BrokerRefused
from attestation_broker.client.tpm import Tpm
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.azure_vtpm.hcl import RUNTIME_OFFSET
from attestation_broker.evidence.azure_vtpm.kind import AzureVtpmVerifier
from attestation_broker.evidence.tpm import load_ak_public
from attestation_broker.evidence.tpm.abi import parse_attest
from attestation_broker.evidence.tpm.kind import TpmVerifier
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.loopback_broker import loopback_broker
from tests.support.swtpm import Swtpm, swtpm_instance
from tests.unit.azure_vtpm import synthetic_tdx
from tests.unit.client.platforms import tdx_broker
from tests.unit.tdx.support import FakeIntelPki

pytestmark = pytest.mark.swtpm

AK_HANDLE = 0x81010002
USER_DATA = b"workload key hash"
VM_ID = "0C5E3F7A-1B2D-4C6E-8F90-A1B2C3D4E5F6"


@pytest.fixture(scope="module")
def swtpm() -> Iterator[Swtpm]:
    with swtpm_instance() as instance:
        instance.run("tpm2_pcrextend", "0:sha256=" + "5a" * 32)
        yield instance


def code_of(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code.name


# --- tpm ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ak_pin(swtpm: Swtpm) -> str:
    """``attest --print-ak --persist`` as an operator runs it; returns the printed pin."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["attest", "--print-ak", "--persist", hex(AK_HANDLE), "--tcti", swtpm.tcti]) == 0
    text = out.getvalue()
    assert text.startswith("-----BEGIN PUBLIC KEY-----")
    doc = json.loads(text.strip().splitlines()[-1])
    assert doc["persisted_at"] == "0x81010002"
    # the printed pin is the SPKI SHA-256 of the key now at the handle
    public = Tpm(swtpm.tcti).read_public(AK_HANDLE)
    assert load_ak_public(public).spki_sha256 == doc["ak_public_sha256"]
    return str(doc["ak_public_sha256"])


def test_tpm_round_trip(tmp_path: Path, swtpm: Swtpm, ak_pin: str) -> None:
    policy = {"tpm": {"ak_keys": [{"label": "swtpm", "sha256": ak_pin}]}}
    with loopback_broker(tmp_path, verifiers=[TpmVerifier()], policy=policy) as broker:
        machine = Machine(tcti=swtpm.tcti, ak_handle=AK_HANDLE, event_log=tmp_path / "absent", pcrs=(0, 1, 7))
        result = attest(
            AttestOptions(broker.url, kind="tpm", user_data=USER_DATA, machine=machine),
            clock=lambda: broker.harness.clock[0],
        )
    sub = result.claims["submods"]["tpm"]
    binding = ExpectedBinding(bytes.fromhex(result.nonce), USER_DATA)
    assert sub["ear_verifier_claims"]["bindings"] == {"nonce": "checked"}
    assert sub["ear_verifier_claims"]["ak_spki_sha256"] == ak_pin
    assert sub["ear_trustworthiness_vector"]["instance-identity"] == 2  # pinned by the policy's ak_keys
    assert sub["ear_attester_claims"]["tpm"]["extra_data"] == binding.tpm_extra_data().hex()
    assert sub["ear_attester_claims"]["tpm"]["pcr_selection"] == [0, 1, 7]
    assert sub["ear_attester_claims"]["tpm"]["pcrs"]["sha256"]["0"] != "00" * 32
    assert result.claims["ear_status"] == "warning"


def test_tpm_binding_is_byte_for_byte_the_broker_check(tmp_path: Path, swtpm: Swtpm, ak_pin: str) -> None:
    from attestation_broker.client.exchange import BrokerClient

    policy = {"tpm": {"ak_keys": [{"label": "swtpm", "sha256": ak_pin}]}}
    with loopback_broker(tmp_path, verifiers=[TpmVerifier()], policy=policy) as broker:
        client = BrokerClient(broker.url)
        challenge = client.challenge()
        binding = ExpectedBinding(challenge.nonce, USER_DATA)
        envelope = collect("tpm", binding, Machine(tcti=swtpm.tcti, ak_handle=AK_HANDLE, event_log=tmp_path / "x"))
        assert parse_attest(base64.b64decode(envelope["evidence"])).extra_data == binding.tpm_extra_data()
        flipped = bytes([USER_DATA[0] ^ 1]) + USER_DATA[1:]
        with pytest.raises(BrokerRefused) as exc:
            client.attest(
                "tpm", {**envelope, "nonce": challenge.nonce_hex, "user_data": base64.b64encode(flipped).decode()}
            )
        assert exc.value.broker_code == "NONCE_BINDING_MISMATCH"
        assert [r for r in broker.harness.sink.records if r.token_jti] == []


def test_cli_refusal_writes_no_token_and_exits_1(
    tmp_path: Path, swtpm: Swtpm, ak_pin: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Policy relied on: ``ak_keys`` pinning another key (docs/policy.md) — the broker refuses."""
    policy = {"tpm": {"ak_keys": [{"label": "other", "sha256": "ab" * 32}]}}
    out = tmp_path / "token.jwt"
    with loopback_broker(tmp_path, verifiers=[TpmVerifier()], policy=policy) as broker:
        import attestation_broker.client as client_pkg

        monkeypatch.setattr(client_pkg, "utc_now", lambda: broker.harness.clock[0])
        code = main(
            [
                "attest",
                "--broker",
                broker.url,
                "--kind",
                "tpm",
                "--tcti",
                swtpm.tcti,
                "--ak-handle",
                hex(AK_HANDLE),
                "--out",
                str(out),
            ]
        )
    assert code == 1 and not out.exists()
    assert "POLICY_REJECTED (403)" in capsys.readouterr().err


def test_tpm_errors_name_what_is_missing(tmp_path: Path, swtpm: Swtpm) -> None:
    with pytest.raises(BrokerError) as exc:
        collect("tpm", ExpectedBinding(b"n"), Machine(tcti=swtpm.tcti, ak_handle=0x81010099))
    assert code_of(exc) == "CLIENT_AK_ABSENT" and "0x81010099" in exc.value.detail
    with pytest.raises(BrokerError) as exc:
        collect("azure-vtpm", ExpectedBinding(b"n"), Machine(tcti="swtpm:host=127.0.0.1,port=9"))
    assert code_of(exc) == "CLIENT_TPM_UNAVAILABLE"
    with pytest.raises(BrokerError) as exc:
        Tpm(swtpm.tcti).nv_read(0x01400001, what="Azure HCL report")
    assert code_of(exc) == "CLIENT_NV_INDEX_ABSENT" and "0x01400001" in exc.value.detail
    with pytest.raises(BrokerError) as exc:
        Tpm(None, device=tmp_path / "tpmrm0").check_available()
    assert code_of(exc) == "CLIENT_TPM_UNAVAILABLE" and "tpmrm0" in exc.value.detail


# --- azure-vtpm -----------------------------------------------------------------------------------


def _b64url(value: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()


def hcl_runtime(ak: rsa.RSAPublicKey, user_data_hex: str) -> bytes:
    numbers = ak.public_numbers()
    jwk = {"kid": "HCLAkPub", "key_ops": ["sign"], "kty": "RSA", "e": _b64url(numbers.e), "n": _b64url(numbers.n)}
    doc = {
        "keys": [jwk],
        "vm-configuration": {"secure-boot": True, "tpm-enabled": True, "vmUniqueId": VM_ID},
        "user-data": user_data_hex,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def hcl_for(ak: rsa.RSAPublicKey, user_data: bytes) -> bytes:
    runtime = hcl_runtime(ak, user_data.hex().upper())  # the HCL writes upper-case hex
    return synthetic_tdx.hcl_report(runtime)[: RUNTIME_OFFSET + len(runtime)]


class AzureParavisorTpm(Tpm):
    """swtpm plus what Azure's paravisor (HCL) does: a write to NV 0x01400002 refreshes the HCL report in
    NV 0x01400001 with that user data (and a TDREPORT whose REPORTDATA binds the runtime JSON)."""

    def __init__(self, tcti: str | None, ak: rsa.RSAPublicKey) -> None:
        super().__init__(tcti)
        self.ak = ak
        self.user_data_writes: list[bytes] = []

    def nv_write(self, index: int, data: bytes) -> None:
        super().nv_write(index, data)
        if index == AZURE_USER_DATA_NV:
            self.user_data_writes.append(data)
            super().nv_write(AZURE_HCL_REPORT_NV, hcl_for(self.ak, data))


@pytest.fixture(scope="module")
def azure_ak(swtpm: Swtpm) -> rsa.RSAPublicKey:
    """The Azure vTPM's provisioned state: HCL AK at 0x81000003, HCL report in NV 0x01400001."""
    tpm = Tpm(swtpm.tcti)
    public = load_ak_public(tpm.create_ak(persist=AZURE_AK_HANDLE)).key
    assert isinstance(public, rsa.RSAPublicKey)
    report = hcl_for(public, bytes(64))
    swtpm.run(
        "tpm2_nvdefine",
        hex(AZURE_HCL_REPORT_NV),
        "-C",
        "o",
        "-s",
        str(len(report)),
        "-a",
        "ownerread|ownerwrite|authread|authwrite",
    )
    swtpm.path("hcl.bin").write_bytes(report)
    swtpm.run("tpm2_nvwrite", hex(AZURE_HCL_REPORT_NV), "-C", "o", "-i", "hcl.bin")
    return public


def imds_for(pki: FakeIntelPki, calls: list[str]) -> ImdsFetch:
    """Azure IMDS ``POST /acc/tdquote`` stand-in: a TD quote for the posted TDREPORT, test-PKI signed."""

    def fetch(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        calls.append(f"{method} {url}")
        assert method == "POST" and url.endswith("/acc/tdquote") and body is not None
        report = json.loads(body)["report"]
        tdreport = base64.urlsafe_b64decode(report + "=" * (-len(report) % 4))
        quote = synthetic_tdx.td_quote(pki, tdreport[128:192])
        return json.dumps({"quote": base64.urlsafe_b64encode(quote).decode().rstrip("=")}).encode()

    return fetch


def test_azure_vtpm_round_trip(tmp_path: Path, swtpm: Swtpm, azure_ak: rsa.RSAPublicKey) -> None:
    pki = FakeIntelPki.create()
    paravisor = AzureParavisorTpm(swtpm.tcti, azure_ak)
    imds_calls: list[str] = []
    machine = Machine(
        tcti=swtpm.tcti,
        imds_url="http://169.254.169.254",
        imds_fetch=imds_for(pki, imds_calls),
        tpm_factory=lambda tcti: paravisor,
    )
    verifier = AzureVtpmVerifier(tdx_trust=pki.trust)
    with tdx_broker(tmp_path, pki, verifiers=[verifier]) as broker:
        result = attest(
            AttestOptions(broker.url, kind="auto", user_data=USER_DATA, machine=machine),
            clock=lambda: broker.harness.clock[0],
        )
    assert result.kind == "azure-vtpm"  # detected from NV 0x01400001
    binding = ExpectedBinding(bytes.fromhex(result.nonce), USER_DATA)
    assert paravisor.user_data_writes == [binding.azure_user_data()]
    assert imds_calls == ["POST http://169.254.169.254/acc/tdquote"]
    sub = result.claims["submods"]["azure-vtpm"]
    assert sub["ear_verifier_claims"]["bindings"] == {"nonce": "checked", "runtime_data": "checked"}
    attester = sub["ear_attester_claims"]
    assert attester["tee"] == "tdx" and attester["platform"] == "azure"
    assert attester["instance"] == {"vm_id": VM_ID}
    assert attester["azure"]["user_data"] == binding.azure_user_data().hex()
    assert attester["tpm"]["extra_data"] == binding.tpm_extra_data().hex()
    assert result.claims["ear_status"] in ("affirming", "warning")


def test_azure_vtpm_needs_the_hcl_report(swtpm: Swtpm) -> None:
    class Bare(Tpm):
        def nv_indices(self) -> set[int]:
            return super().nv_indices() - {AZURE_HCL_REPORT_NV}

    with pytest.raises(BrokerError) as exc:
        collect("azure-vtpm", ExpectedBinding(b"n"), Machine(tcti=swtpm.tcti, tpm_factory=Bare))
    assert code_of(exc) == "CLIENT_NV_INDEX_ABSENT" and "0x01400001" in exc.value.detail


def test_hcl_report_fits_the_nv_index() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    report = hcl_for(key, bytes(64))
    assert report[:4] == b"HCLA" and len(report) <= 2048  # swtpm's TPM2_PT_NV_INDEX_MAX
    assert struct.unpack_from("<I", report, 8)[0] == len(report)
    assert hashlib.sha256(report[RUNTIME_OFFSET:]).digest() + bytes(32) == report[32 + 128 : 32 + 192]


# --- tpm with the TCG event log ---------------------------------------------------------------------

EVENT_LOG = "tpm/gce-eventlog-ubuntu-2404-amd-sevsnp.bin"


def test_tpm_round_trip_with_the_event_log(tmp_path: Path) -> None:
    """A real firmware event log (GCE Ubuntu 24.04) replayed into a fresh swtpm as firmware would measure it;
    the client sends the log from its securityfs path and the broker replays it against the quoted PCRs.
    Policy relied on: ``ak_keys: [{label: swtpm, sha256: <pin>}]`` (docs/policy.md)."""
    from tests.support.vectors import vector
    from tests.unit.client.platforms import replay_event_log

    raw = vector(EVENT_LOG)
    log_path = tmp_path / "binary_bios_measurements"
    log_path.write_bytes(raw)
    with swtpm_instance() as tpm:
        replay_event_log(tpm, raw)
        pin = load_ak_public(Tpm(tpm.tcti).create_ak(persist=AK_HANDLE)).spki_sha256
        with loopback_broker(
            tmp_path, verifiers=[TpmVerifier()], policy={"tpm": {"ak_keys": [{"label": "swtpm", "sha256": pin}]}}
        ) as broker:
            machine = Machine(tcti=tpm.tcti, ak_handle=AK_HANDLE, event_log=log_path, pcrs=tuple(range(8)))
            result = attest(
                AttestOptions(broker.url, kind="tpm", machine=machine), clock=lambda: broker.harness.clock[0]
            )
    sub = result.claims["submods"]["tpm"]
    assert sub["ear_verifier_claims"]["event_log"] == "replayed"
    assert (
        sub["ear_attester_claims"]["tpm"]["pcrs"]["sha256"]["0"]
        == "50597a27846e91d025eef597abbc89f72bff9af849094db97b0684d8bc4c515e"
    )
    assert sub["ear_verifier_claims"]["bindings"] == {"nonce": "checked"}


# --- azure-vtpm on SEV-SNP ------------------------------------------------------------------------


def hcl_snp(runtime: bytes, report: bytes) -> bytes:
    """An HCL report (layout in evidence/azure_vtpm/hcl.py) carrying an SEV-SNP report and ``runtime``."""
    header = b"HCLA" + struct.pack("<IIII", 2, RUNTIME_OFFSET + len(runtime), 2, 0) + bytes(12)
    igvm = struct.pack("<IIIII", 20 + len(runtime), 1, 2, 1, len(runtime))
    return header + report.ljust(1184, b"\0") + igvm + runtime


def test_azure_vtpm_on_sev_snp_takes_the_vcek_from_imds(tmp_path: Path) -> None:
    """Azure SEV-SNP CVM: the HCL report carries an SNP report (test-only AMD-like signer, VMPL 0) whose
    REPORT_DATA binds the runtime JSON; the VCEK comes from the IMDS THIM stand-in. Policy: default ``{}``."""
    from cryptography.hazmat.primitives.serialization import Encoding

    from tests.unit.client.platforms import CHIP_ID, TURIN_TCB, snp_broker
    from tests.unit.snp.support import build_report, fake_amd

    amd = fake_amd("Turin")
    vcek_key, vcek_der = amd.vcek(CHIP_ID, TURIN_TCB)
    vcek_pem = x509.load_der_x509_certificate(vcek_der).public_bytes(Encoding.PEM).decode()

    def snp_hcl(ak: rsa.RSAPublicKey, user_data: bytes) -> bytes:
        runtime = hcl_runtime(ak, user_data.hex().upper())
        report_data = hashlib.sha256(runtime).digest() + bytes(32)
        return hcl_snp(runtime, build_report(vcek_key, chip_id=CHIP_ID, tcb=TURIN_TCB, report_data=report_data))

    class SnpParavisor(Tpm):
        def nv_write(self, index: int, data: bytes) -> None:
            super().nv_write(index, data)
            if index == AZURE_USER_DATA_NV:
                super().nv_write(AZURE_HCL_REPORT_NV, snp_hcl(ak, data))

    imds_calls: list[str] = []

    def thim(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> bytes:
        imds_calls.append(f"{method} {url} {headers.get('Metadata')}")
        return json.dumps({"vcekCert": vcek_pem, "certificateChain": ""}).encode()

    with swtpm_instance() as tpm:
        public = load_ak_public(Tpm(tpm.tcti).create_ak(persist=AZURE_AK_HANDLE)).key
        assert isinstance(public, rsa.RSAPublicKey)
        ak = public
        first = snp_hcl(ak, bytes(64))
        tpm.path("hcl.bin").write_bytes(first)
        tpm.run(
            "tpm2_nvdefine",
            hex(AZURE_HCL_REPORT_NV),
            "-C",
            "o",
            "-s",
            str(len(first)),
            "-a",
            "ownerread|ownerwrite|authread|authwrite",
        )
        tpm.run("tpm2_nvwrite", hex(AZURE_HCL_REPORT_NV), "-C", "o", "-i", "hcl.bin")
        machine = Machine(tcti=tpm.tcti, imds_fetch=thim, tpm_factory=SnpParavisor)
        with snp_broker(tmp_path, verifiers=[AzureVtpmVerifier(snp_trust=amd.trust)]) as broker:
            result = attest(
                AttestOptions(broker.url, user_data=USER_DATA, machine=machine), clock=lambda: broker.harness.clock[0]
            )
    assert result.kind == "azure-vtpm"
    assert imds_calls == ["GET http://169.254.169.254/metadata/THIM/amd/certification true"]
    sub = result.claims["submods"]["azure-vtpm"]
    assert sub["ear_attester_claims"]["tee"] == "sev-snp"
    assert sub["ear_verifier_claims"]["bindings"] == {"nonce": "checked", "runtime_data": "checked"}
    binding = ExpectedBinding(bytes.fromhex(result.nonce), USER_DATA)
    assert sub["ear_attester_claims"]["azure"]["user_data"] == binding.azure_user_data().hex()
