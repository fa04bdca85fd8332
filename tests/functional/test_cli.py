"""The `attestation-broker` CLI on real vectors: exit codes 0 / 1 / 2 / 3, one JSON object on stdout, a summary line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.support.vectors import vector, vector_path

CLI = str(Path(sys.executable).parent / "attestation-broker")
REPORT = "snp/trustee-milan-v2/test-report.bin"
VCEK = "snp/trustee-milan-v2/test-vcek.der"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    out = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    return out.returncode, json.loads(out.stdout)


def run_full(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


@pytest.fixture
def kds_mirror(tmp_path: Path) -> Path:
    crl = tmp_path / "kdsintf.amd.com" / "vcek" / "v1" / "Milan" / "crl"
    crl.parent.mkdir(parents=True)
    crl.write_bytes(vector("roots/amd/amd_milan_vcek_crl.pem"))
    return tmp_path


def test_verify_real_report_with_recorded_collateral(kds_mirror: Path) -> None:
    code, doc = run(
        "verify",
        "snp",
        str(vector_path(REPORT)),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
    )
    assert code == 0, doc
    assert doc["ear_status"] in ("affirming", "warning")
    assert doc["claims"]["submods"]["snp"]["ear_attester_claims"]["tee"] == "sev-snp"
    # no token signed by a throw-away key passed off as the broker's, and no made-up http issuer
    assert "token" not in doc and "--sign" in doc["token_note"]
    assert doc["claims"]["iss"] == "urn:attestation-broker:cli"


def test_verify_tampered_report_exits_1(kds_mirror: Path, tmp_path: Path) -> None:
    tampered = bytearray(vector(REPORT))
    tampered[0x90] ^= 1
    path = tmp_path / "tampered.bin"
    path.write_bytes(bytes(tampered))
    code, doc = run(
        "verify",
        "snp",
        str(path),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
    )
    assert (code, doc["error"]["code"]) == (1, "SNP_SIGNATURE_INVALID")


def test_verify_offline_without_crl_is_collateral_unavailable() -> None:
    code, doc = run(
        "verify", "snp", str(vector_path(REPORT)), str(vector_path(VCEK)), "--now", "2025-06-01T00:00:00Z", "--offline"
    )
    assert (code, doc["error"]["code"], doc["error"]["exit"]) == (3, "COLLATERAL_UNAVAILABLE", 3)  # could not decide


def test_verify_nonce_binding_mismatch_exits_1(kds_mirror: Path) -> None:
    code, doc = run(
        "verify",
        "snp",
        str(vector_path(REPORT)),
        str(vector_path(VCEK)),
        "--now",
        "2025-06-01T00:00:00Z",
        "--collateral",
        str(kds_mirror),
        "--nonce",
        "00" * 32,
    )
    assert (code, doc["error"]["code"]) == (1, "NONCE_BINDING_MISMATCH")


def test_verify_unusable_input_exits_2(tmp_path: Path) -> None:
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a report")
    code, doc = run("verify", "snp", str(junk), "--offline")
    assert code == 2 and doc["error"]["status"] == 400
    code, doc = run("verify", "no-such-kind", str(junk), "--offline")
    assert code == 2 and doc["error"]["code"] == "UNKNOWN_EVIDENCE_KIND"


def test_token_verify_round_trip(kds_mirror: Path, tmp_path: Path) -> None:
    # Issue a token with a local data dir key through the library, then verify it with the CLI.
    from datetime import UTC, datetime, timedelta

    from attestation_broker import appraisal as ar4si
    from attestation_broker.appraisal import Appraisal
    from attestation_broker.token.issuer import TokenService
    from attestation_broker.token.keys import local_keyring

    ring = local_keyring(tmp_path)
    svc = TokenService(ring, issuer="http://127.0.0.1:8080", audience="attestation-broker", ttl=timedelta(minutes=5))
    appraisal = Appraisal(
        kind="snp",
        trustworthiness_vector={"hardware": ar4si.HW_GENUINE},
        attester_claims={"tee": "sev-snp", "platform": "unknown"},
    )
    token = svc.sign(svc.claims_for(appraisal, evidence_sha256="0" * 64, now=datetime.now(UTC), nonce=None))
    code, doc = run("token", "verify", token, "--data-dir", str(tmp_path))
    assert code == 0 and doc["valid"] is True and doc["claims"]["submods"]["snp"]
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(ring.jwks(datetime.now(UTC))))
    code, doc = run("token", "verify", token[:-3] + "AAA", "--jwks", str(jwks))
    assert code == 1 and doc["error"]["code"] == "TOKEN_INVALID"
    # A JWKS file is operator input: entries that are not objects are skipped, a broken key is CONFIG_INVALID.
    kid = ring.active.key_id
    for keys, exit_code, error in (
        ([1, "x", None], 1, "TOKEN_INVALID"),
        ([{"kid": kid, "kty": "EC", "crv": "P-256", "x": "zz", "y": "zz"}], 2, "CONFIG_INVALID"),
    ):
        jwks.write_text(json.dumps({"keys": keys}))
        code, doc = run("token", "verify", token, "--jwks", str(jwks))
        assert (code, doc["error"]["code"]) == (exit_code, error)


def test_help() -> None:
    out = subprocess.run([CLI, "verify", "--help"], capture_output=True, text=True, check=True)
    assert "--collateral" in out.stdout and "--now" in out.stdout


SNP_ARGS = ("--now", "2025-06-01T00:00:00Z")


def _snp(kds_mirror: Path, evidence: Path, *extra: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_full(
        "verify",
        "snp",
        str(evidence),
        str(vector_path(VCEK)),
        *SNP_ARGS,
        "--collateral",
        str(kds_mirror),
        *extra,
        cwd=cwd,
    )


def test_summary_line_on_stderr_json_on_stdout_quiet_and_text(kds_mirror: Path, tmp_path: Path) -> None:
    out = _snp(kds_mirror, vector_path(REPORT), cwd=tmp_path)
    assert out.returncode == 0 and json.loads(out.stdout)["ear_status"] == "warning"
    line = out.stderr.strip()
    assert "\n" not in line  # one line, no audit JSON unless --audit
    assert line.startswith("snp: warning — sev-snp/unknown, measurement a1f39304") and "policy snp-default" in line
    assert "why: launch measurement not yet appraised against reference values" in line
    quiet = _snp(kds_mirror, vector_path(REPORT), "--quiet", cwd=tmp_path)
    assert (quiet.returncode, quiet.stderr) == (0, "") and json.loads(quiet.stdout)["kind"] == "snp"
    text = _snp(kds_mirror, vector_path(REPORT), "--format", "text", cwd=tmp_path)
    assert text.stdout.startswith("snp: warning — ") and "measurement  a1f39304" in text.stdout
    audit = _snp(kds_mirror, vector_path(REPORT), "--audit", "--quiet", cwd=tmp_path)
    assert json.loads(audit.stderr)["decision"]["verdict"] == "warning"
    assert [p for p in tmp_path.iterdir() if p.name != "kdsintf.amd.com"] == []  # nothing written to the cwd


@pytest.mark.parametrize("encoding", ["hex", "hex0x", "base64", "base64url"])
def test_hex_and_base64_evidence_are_accepted(kds_mirror: Path, tmp_path: Path, encoding: str) -> None:
    import base64

    raw = vector(REPORT)
    text = {
        "hex": raw.hex(),
        "hex0x": "0x" + raw.hex().upper() + "\n",
        "base64": base64.encodebytes(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }[encoding]
    path = tmp_path / f"report.{encoding}"
    path.write_text(text)
    out = _snp(kds_mirror, path)
    assert out.returncode == 0, out.stdout
    assert json.loads(out.stdout)["claims"]["submods"]["snp"]["ear_attester_claims"]["measurement"].startswith("a1f393")


def test_refused_unusable_and_undecided_have_distinct_exit_codes(kds_mirror: Path, tmp_path: Path) -> None:
    tampered = bytearray(vector(REPORT))
    tampered[0x90] ^= 1
    (tmp_path / "t.bin").write_bytes(bytes(tampered))
    refused = _snp(kds_mirror, tmp_path / "t.bin")
    assert refused.returncode == 1 and refused.stderr.startswith("snp: refused — SNP_SIGNATURE_INVALID")
    missing = run_full("verify", "snp", str(tmp_path / "nope.bin"))
    doc = json.loads(missing.stdout)
    assert (missing.returncode, doc["error"]["code"], doc["error"]["exit"]) == (2, "UNREADABLE_FILE", 2)
    assert "nope.bin" in doc["error"]["detail"] and "No such file" in doc["error"]["detail"]
    env = {**os.environ, "BROKER_MAX_BODY_BYTES": "lots"}
    config = run_full("verify", "snp", str(vector_path(REPORT)), "--offline", env=env)
    assert (config.returncode, json.loads(config.stdout)["error"]["code"]) == (2, "CONFIG_INVALID")
    undecided = run_full("verify", "snp", str(vector_path(REPORT)), str(vector_path(VCEK)), *SNP_ARGS, "--offline")
    assert undecided.returncode == 3 and undecided.stderr.startswith("snp: could not decide — COLLATERAL_UNAVAILABLE")
    assert "--collateral DIR" in undecided.stderr


def test_text_input_explains_itself(tmp_path: Path) -> None:
    # text that is neither hex nor base64 reaches the parser, which says what it expected and what it found
    path = tmp_path / "short.txt"
    path.write_text("0000" * 300 + " (not hex: !)")
    code, doc = run("verify", "snp", str(path), "--offline")
    assert code == 2 and doc["error"]["code"] == "SNP_REPORT_VERSION_UNSUPPORTED"
    assert "VERSION is 808464432; expected one of 2, 3, 4, 5" in doc["error"]["detail"]
    assert "starts with text" in doc["error"]["detail"]


def test_sign_uses_the_local_key_and_says_where_it_lives(kds_mirror: Path, tmp_path: Path) -> None:
    import jwt

    data = tmp_path / "data"
    env = {**os.environ, "BROKER_DATA_DIR": str(data), "BROKER_ISSUER": "https://broker.example"}
    out = run_full(
        "verify", "snp", str(vector_path(REPORT)), str(vector_path(VCEK)), *SNP_ARGS,
        "--collateral", str(kds_mirror), "--sign", env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout
    assert f"created data directory {data}" in out.stderr
    doc = json.loads(out.stdout)
    assert doc["data_dir"] == str(data) and doc["claims"]["iss"] == "https://broker.example"
    # the same key the local broker publishes at /jwks verifies it, at the real time (--now pins only evidence)
    code, verified = run("token", "verify", doc["token"], "--quiet", env=env)
    assert code == 0 and verified["claims"]["jti"] == doc["claims"]["jti"]
    ring_jwks = tmp_path / "jwks.json"
    from attestation_broker.token.keys import local_keyring

    ring_jwks.write_text(json.dumps(local_keyring(data).jwks(datetime.now(UTC))))
    key = jwt.PyJWKSet.from_dict(json.loads(ring_jwks.read_text()))[jwt.get_unverified_header(doc["token"])["kid"]].key
    assert (
        jwt.decode(doc["token"], key, algorithms=["ES256"], audience="attestation-broker")["iss"]
        == "https://broker.example"
    )


def test_token_verify_names_both_issuers_and_creates_nothing(tmp_path: Path) -> None:
    from attestation_broker.appraisal import Appraisal
    from attestation_broker.token.issuer import TokenService
    from attestation_broker.token.keys import local_keyring

    ring = local_keyring(tmp_path / "keys")
    svc = TokenService(ring, issuer="https://a.example", audience="attestation-broker", ttl=timedelta(minutes=5))
    appraisal = Appraisal(kind="snp", trustworthiness_vector={"hardware": 2}, attester_claims={"tee": "sev-snp"})
    token = svc.sign(svc.claims_for(appraisal, evidence_sha256="0" * 64, now=datetime.now(UTC), nonce=None))
    out = run_full("token", "verify", token, "--data-dir", str(tmp_path / "keys"), "--issuer", "https://b.example")
    detail = json.loads(out.stdout)["error"]["detail"]
    assert out.returncode == 1 and "'https://b.example'" in detail and "'https://a.example'" in detail
    assert out.stderr.startswith("token: refused — TOKEN_INVALID: issuer mismatch")
    # without a key or a JWKS there is nothing to verify against: say so, and do not mint a key anywhere
    home = tmp_path / "home"
    env = {**os.environ, "XDG_DATA_HOME": str(home)}
    env.pop("BROKER_DATA_DIR", None)
    code, doc = run("token", "verify", token, env=env, cwd=tmp_path)
    assert code == 2 and doc["error"]["code"] == "CONFIG_INVALID" and "--jwks" in doc["error"]["detail"]
    assert not home.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


def test_keys_rotate_uses_the_per_user_data_dir_and_prints_it(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    env.pop("BROKER_DATA_DIR", None)
    out = run_full("keys", "rotate", env=env, cwd=tmp_path)
    expected = tmp_path / "xdg" / "attestation-broker"
    assert out.returncode == 0 and f"created data directory {expected}" in out.stderr
    assert (expected / "signing-key.pem").is_file() and sorted(p.name for p in tmp_path.iterdir()) == ["xdg"]


def test_verify_help_lists_kinds_and_exit_codes() -> None:
    out = subprocess.run([CLI, "verify", "--help"], capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())
    for kind in ("azure-token", "azure-vtpm", "gcp-token", "gcp-vtpm", "nitro", "snp", "tdx", "tpm"):
        assert kind in flat
    assert "3 could not decide" in flat and "hex or base64" in flat
