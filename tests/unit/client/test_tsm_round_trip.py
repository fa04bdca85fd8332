"""``attestation-broker attest`` for snp and tdx: configfs-tsm stand-in → real nonce round trip through a
loopback broker whose verifiers trust TEST-ONLY AMD-like / Intel-like roots.

Policy relied on: each kind's default policy (``{}``): the test workloads are non-debug and graded
UpToDate by the test collateral; with no measurement allow-list configured the default policies grade
them ``warning``, which the broker issues a token for.
"""

from __future__ import annotations

import base64
import functools
import json
import stat
from pathlib import Path

import jwt
import pytest
from attestation_broker.binding import ExpectedBinding
from attestation_broker.cli import main
from attestation_broker.client import AttestOptions, Machine, attest, write_token
from attestation_broker.client import tsm as tsm_mod
from attestation_broker.client.errors import BrokerRefused
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp.abi import parse_report
from attestation_broker.evidence.tdx.abi import parse_quote

from tests.unit.client.platforms import snp_broker, snp_platform, tdx_broker, tdx_platform
from tests.unit.client.tsm_standin import KernelTsm
from tests.unit.tdx.support import FakeIntelPki

USER_DATA = bytes.fromhex("c0ffee") + b"workload public key hash"


def tsm_root(tmp_path: Path) -> Path:
    root = tmp_path / "tsm"
    (root / "report").mkdir(parents=True)
    return root


def code_of(exc: pytest.ExceptionInfo[BrokerError]) -> str:
    return exc.value.code.name


@pytest.fixture(scope="module")
def intel() -> FakeIntelPki:
    return FakeIntelPki.create()


def test_snp_round_trip_binds_the_broker_nonce(tmp_path: Path) -> None:
    platform = snp_platform()
    root = tsm_root(tmp_path)
    with snp_broker(tmp_path) as broker:
        machine = Machine(tsm_root=root, tsm_files=platform.tsm, privlevel=0)
        result = attest(
            AttestOptions(broker.url, kind="auto", user_data=USER_DATA, machine=machine),
            clock=lambda: broker.harness.clock[0],
        )
    assert result.kind == "snp"  # detected from the provider
    assert broker.requests == ["POST /v1/challenge", "POST /v1/attest/snp", "GET /jwks"]
    claims = result.claims
    sub = claims["submods"]["snp"]
    assert claims["eat_nonce"] == result.nonce
    assert sub["ear_verifier_claims"]["bindings"]["nonce"] == "checked"
    # the VCEK came from the auxblob certificate table, not from KDS
    sources = [c.get("source") for c in sub["ear_verifier_claims"]["collateral"]]
    assert "evidence" in sources
    binding = ExpectedBinding(bytes.fromhex(result.nonce), USER_DATA)
    assert sub["ear_attester_claims"]["report_data"] == binding.report_data().hex()
    assert claims["ear_status"] == "warning"  # default policy: no measurement allow-list configured
    assert platform.tsm.reports == 1 and not list((root / "report").iterdir())  # entry removed


def test_tdx_round_trip_binds_the_broker_nonce(tmp_path: Path, intel: FakeIntelPki) -> None:
    tsm = tdx_platform(intel)
    root = tsm_root(tmp_path)
    with tdx_broker(tmp_path, intel) as broker:
        result = attest(
            AttestOptions(broker.url, kind="tdx", machine=Machine(tsm_root=root, tsm_files=tsm)),
            clock=lambda: broker.harness.clock[0],
        )
    sub = result.claims["submods"]["tdx"]
    assert sub["ear_verifier_claims"]["bindings"]["nonce"] == "checked"
    assert sub["ear_attester_claims"]["report_data"] == ExpectedBinding(bytes.fromhex(result.nonce)).report_data().hex()
    assert result.claims["ear_status"] == "warning"  # default policy: no MRTD allow-list configured


@pytest.mark.parametrize("kind", ["snp", "tdx"])
def test_client_binding_is_byte_for_byte_the_broker_check(tmp_path: Path, intel: FakeIntelPki, kind: str) -> None:
    """What the client writes to inblob is ExpectedBinding.report_data(); a broker told other user data
    (one bit) refuses with NONCE_BINDING_MISMATCH and issues no token."""
    from attestation_broker.client.exchange import BrokerClient

    seen: list[bytes] = []
    tsm: KernelTsm = snp_platform().tsm if kind == "snp" else tdx_platform(intel)
    inner = tsm.make_report

    def recording(inblob: bytes, level: int) -> tuple[bytes, bytes]:
        seen.append(inblob)
        return inner(inblob, level)

    tsm.make_report = recording
    root = tsm_root(tmp_path)
    ctx = snp_broker(tmp_path) if kind == "snp" else tdx_broker(tmp_path, intel)
    with ctx as broker:
        client = BrokerClient(broker.url)
        challenge = client.challenge()
        binding = ExpectedBinding(challenge.nonce, USER_DATA)
        from attestation_broker.client.collect import collect

        envelope = collect(kind, binding, Machine(tsm_root=root, tsm_files=tsm))
        assert seen == [binding.report_data()]
        evidence = base64.b64decode(envelope["evidence"])
        carried = parse_report(evidence).report_data if kind == "snp" else parse_quote(evidence).body.report_data
        assert carried == binding.report_data()
        flipped = bytes([USER_DATA[0] ^ 1]) + USER_DATA[1:]
        with pytest.raises(BrokerRefused) as exc:
            client.attest(
                kind, {**envelope, "nonce": challenge.nonce_hex, "user_data": base64.b64encode(flipped).decode()}
            )
        assert exc.value.broker_code == "NONCE_BINDING_MISMATCH" and exc.value.broker_status == 403
        issued = [r for r in broker.harness.sink.records if r.token_jti]
        assert issued == []  # a refusal never yields a token


def test_snp_without_cert_table_lets_the_broker_fetch_the_vcek(tmp_path: Path) -> None:
    platform = snp_platform(with_certs=False)
    with snp_broker(tmp_path) as broker:
        machine = Machine(tsm_root=tsm_root(tmp_path), tsm_files=platform.tsm)
        with pytest.raises(BrokerRefused) as exc:
            attest(AttestOptions(broker.url, kind="snp", machine=machine), clock=lambda: broker.harness.clock[0])
    # the KDS stand-in serves no VCEK for this test chip: the broker says so, the client passes it on
    assert exc.value.broker_code in ("COLLATERAL_NOT_FOUND", "COLLATERAL_UNAVAILABLE")


def test_generation_moving_is_detected_and_retried(tmp_path: Path) -> None:
    platform = snp_platform()
    calls = {"n": 0}

    def other_writer(entry: Path) -> None:
        calls["n"] += 1
        if calls["n"] == 1:  # someone else writes inblob while we read, once
            platform.tsm.write(entry / "inblob", b"\x55" * 64)

    platform.tsm.interfere = other_writer
    report = tsm_mod.get_report(b"\x01" * 64, root=tsm_root(tmp_path), files=platform.tsm)
    assert platform.tsm.reports == 2 and parse_report(report.outblob).report_data == b"\x01" * 64

    platform.tsm.interfere = lambda entry: platform.tsm.write(entry / "inblob", b"\x55" * 64)
    with pytest.raises(BrokerError) as exc:
        tsm_mod.get_report(b"\x01" * 64, root=tsm_root(tmp_path / "again"), files=platform.tsm)
    assert code_of(exc) == "CLIENT_TSM_CONTENDED"


def test_missing_configfs_tsm_and_wrong_provider_are_named(tmp_path: Path, intel: FakeIntelPki) -> None:
    with pytest.raises(BrokerError) as exc:
        tsm_mod.get_report(bytes(64), root=tmp_path / "no-tsm")
    assert code_of(exc) == "CLIENT_TSM_UNAVAILABLE" and "6.7" in exc.value.detail
    with pytest.raises(BrokerError) as exc:
        tsm_mod.get_report(bytes(64), root=tsm_root(tmp_path), kind="snp", files=tdx_platform(intel))
    assert code_of(exc) == "CLIENT_TSM_PROVIDER_MISMATCH" and "tdx_guest" in exc.value.detail
    with pytest.raises(BrokerError) as exc:
        tsm_mod.get_report(bytes(32), root=tsm_root(tmp_path / "x"))
    assert code_of(exc) == "CLIENT_TSM_FAILED"
    platform = snp_platform()
    platform.tsm.privlevel_floor = 2
    with pytest.raises(BrokerError) as exc:
        tsm_mod.get_report(bytes(64), root=tsm_root(tmp_path / "y"), privlevel=0, files=platform.tsm)
    assert code_of(exc) == "CLIENT_TSM_FAILED"


def test_no_platform_at_all(tmp_path: Path) -> None:
    machine = Machine(tsm_root=tmp_path / "none", tcti="swtpm:host=127.0.0.1,port=1")
    with pytest.raises(BrokerError) as exc:
        attest(AttestOptions("http://127.0.0.1:1", machine=machine))
    assert code_of(exc) == "CLIENT_NO_PLATFORM"


def test_write_token_is_0600_and_atomic(tmp_path: Path) -> None:
    out = tmp_path / "token.jwt"
    write_token(out, "a.b.c")
    assert out.read_text() == "a.b.c\n" and stat.S_IMODE(out.stat().st_mode) == 0o600
    write_token(out, "d.e.f")
    assert out.read_text() == "d.e.f\n" and [p.name for p in tmp_path.iterdir()] == ["token.jwt"]
    with pytest.raises(BrokerError) as exc:
        write_token(tmp_path / "missing-dir" / "t.jwt", "x")
    assert code_of(exc) == "CLIENT_OUTPUT_UNWRITABLE"


def test_cli_writes_the_token_and_prints_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = snp_platform()
    root = tsm_root(tmp_path)
    # the CLI builds Machine itself: route its configfs-tsm file operations to the stand-in
    monkeypatch.setattr("attestation_broker.cli.attest.Machine", functools.partial(Machine, tsm_files=platform.tsm))
    with snp_broker(tmp_path) as broker:
        import attestation_broker.client as client_pkg

        monkeypatch.setattr(client_pkg, "utc_now", lambda: broker.harness.clock[0])
        out = tmp_path / "token.jwt"
        code = main(
            [
                "attest",
                "--broker",
                broker.url,
                "--kind",
                "snp",
                "--tsm-root",
                str(root),
                "--out",
                str(out),
                "--user-data",
                USER_DATA.hex(),
            ]
        )
    printed = capsys.readouterr().out.strip().splitlines()
    assert code == 0 and len(printed) == 1
    assert printed[0].startswith("attested kind=snp status=") and f"token={out}" in printed[0]
    token = out.read_text().strip()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==").decode())["submods"]["snp"]
    assert jwt.get_unverified_header(token)["alg"] in ("ES256", "RS256")


def test_cli_watch_bounded_and_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = snp_platform()
    root = tsm_root(tmp_path)
    monkeypatch.setattr("attestation_broker.cli.attest.Machine", functools.partial(Machine, tsm_files=platform.tsm))
    out = tmp_path / "watched.jwt"
    with snp_broker(tmp_path) as broker:
        import attestation_broker.client as client_pkg

        monkeypatch.setattr(client_pkg, "utc_now", lambda: broker.harness.clock[0])
        base = ["attest", "--broker", broker.url, "--tsm-root", str(root)]
        assert main([*base, "--watch", "--rounds", "1", "--out", str(out)]) == 0
        assert out.read_text().count(".") == 2 and platform.tsm.reports == 1
        assert main([*base, "--watch"]) == 2  # --watch needs --out
    captured = capsys.readouterr()
    assert "attested kind=snp" in captured.out
    # nothing on this machine: exit 3 with the code that names it
    assert (
        main(
            [
                "attest",
                "--broker",
                "http://127.0.0.1:9",
                "--tsm-root",
                str(tmp_path / "none"),
                "--tcti",
                "swtpm:host=127.0.0.1,port=9",
            ]
        )
        == 3
    )
    assert "CLIENT_NO_PLATFORM" in capsys.readouterr().err
