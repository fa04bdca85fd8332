"""The offline quick start (``make demo``): a software TPM attests to a local broker, end to end.

1. start a software TPM (swtpm) and make an attestation key (AK) with tpm2-tools;
2. write the broker policy from a known-good quote (``attestation-broker policy init``): it pins that AK (a
   plain TPM quote proves nothing unless its AK is trusted) and the quoted PCR values;
3. start the broker (``attestation-broker serve``) on loopback, offline;
4. get a challenge nonce, make a genuinely fresh quote that binds it (extraData = SHA-256(nonce)), attest;
5. verify the returned token with PyJWT against the broker's ``/jwks``, as any relying party would;
6. show refusals: a tampered quote (TPM_SIGNATURE_INVALID) and a replayed nonce (NONCE_REPLAYED);
7. verify the bundled real SEV-SNP and TDX evidence offline (``attestation-broker verify ... --now``) with the
   recorded vendor collateral in ``examples/data`` (see its MANIFEST.md).

Needs only loopback networking, swtpm and tpm2-tools (``make system-deps``). Everything is written to a
temporary directory (``--workdir DIR`` keeps it). Exit status 0 when every step behaved as described.
tests/e2e/test_demo.py runs this script.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
CLI = str(Path(sys.executable).parent / "attestation-broker")
TOOLS = ("swtpm", "tpm2_createek", "tpm2_createak", "tpm2_readpublic", "tpm2_quote", "tpm2_pcrextend")
PCRS = "sha256:0,1,2,3,4,5,6,7,16"


class DemoFailed(Exception):
    pass


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def say(text: str) -> None:
    print(f"   {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_pair() -> int:
    """A port whose successor is free too (the swtpm TCTI uses port + 1 for control)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise DemoFailed("no two consecutive free loopback ports")


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DemoFailed(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoFailed(f"{what} did not start within {timeout:.0f} s")


@contextmanager
def running(cmd: list[str], *, port: int, what: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_port(port, proc, what)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


class Tpm:
    def __init__(self, port: int, workdir: Path) -> None:
        self.env = {**os.environ, "TPM2TOOLS_TCTI": f"swtpm:host=127.0.0.1,port={port}"}
        self.workdir = workdir

    def run(self, *args: str) -> None:
        proc = subprocess.run(args, cwd=self.workdir, env=self.env, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise DemoFailed(f"{' '.join(args)} failed: {proc.stderr.strip()[:500]}")
        # swtpm has no resource manager: free transient slots after each command
        for flag in ("-t", "-s"):
            subprocess.run(["tpm2_flushcontext", flag], env=self.env, capture_output=True, check=False)

    def quote(self, nonce: bytes, prefix: str) -> dict[str, bytes]:
        """A fresh quote whose extraData is SHA-256(nonce): the tpm kind's binding (docs/evidence.md)."""
        qualifying = hashlib.sha256(nonce).hexdigest()
        self.run(
            "tpm2_quote", "-c", "ak.ctx", "-l", PCRS, "-q", qualifying, "-g", "sha256",
            "-m", f"{prefix}.msg", "-s", f"{prefix}.sig", "-o", f"{prefix}.pcrs", "-f", "tss",
        )  # fmt: skip
        return {part: (self.workdir / f"{prefix}.{part}").read_bytes() for part in ("msg", "sig", "pcrs")}


def http(base: str, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)  # noqa: S310 - loopback URL
    if data is not None:
        request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write_policy(path: Path, tpm: Tpm, ak_pem: Path) -> None:
    """The broker refuses a TPM quote whose AK no policy pins (403 POLICY_REJECTED, default deny, docs/policy.md).
    ``policy init`` derives a named policy (AK pin + PCR reference values) from a quote we trust: this one."""
    tpm.quote(b"golden", "golden")
    files = [str(tpm.workdir / f"golden.{part}") for part in ("msg", "sig")] + [str(ak_pem)]
    files.append(str(tpm.workdir / "golden.pcrs"))
    proc = subprocess.run(
        [CLI, "policy", "init", "tpm", *files, "--name", "demo-tpm"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise DemoFailed(f"policy init failed ({proc.returncode}): {proc.stdout[-500:]} {proc.stderr[-500:]}")
    path.write_text(proc.stdout)


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


def tpm_walkthrough(work: Path) -> None:
    step("1. Software TPM and attestation key")
    tpm_port = free_port_pair()
    state = work / "swtpm-state"
    state.mkdir()
    swtpm = [
        "swtpm", "socket", "--tpm2", "--tpmstate", f"dir={state}", "--flags", "startup-clear",
        "--server", f"type=tcp,port={tpm_port},bindaddr=127.0.0.1",
        "--ctrl", f"type=tcp,port={tpm_port + 1},bindaddr=127.0.0.1",
    ]  # fmt: skip
    with running(swtpm, port=tpm_port, what="swtpm", log=work / "swtpm.log"):
        tpm = Tpm(tpm_port, work)
        tpm.run("tpm2_pcrextend", "16:sha256=" + hashlib.sha256(b"demo workload").hexdigest())
        tpm.run("tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub")
        tpm.run(
            "tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx", "-G", "rsa", "-g", "sha256", "-s", "rsassa",
            "-u", "ak.pub", "-n", "ak.name", "-r", "ak.priv",
        )  # fmt: skip
        tpm.run("tpm2_readpublic", "-c", "ak.ctx", "-o", "ak.pem", "-f", "pem")
        ak_pem = (work / "ak.pem").read_bytes()
        spki = serialization.load_pem_public_key(ak_pem).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        pin = hashlib.sha256(spki).hexdigest()
        say(f"swtpm on 127.0.0.1:{tpm_port}; AK (RSA 2048, RSASSA) SPKI SHA-256 = {pin}")

        step("2. Policy from a known-good quote: attestation-broker policy init tpm ... --name demo-tpm")
        policy = work / "policy.yaml"
        write_policy(policy, tpm, work / "ak.pem")
        expect(pin in policy.read_text(), "the policy does not pin the AK")
        say(f"{policy}: policy demo-tpm pins AK {pin[:16]}... and PCRs 0-7 (reference values)")

        step("3. Broker on loopback (offline)")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "BROKER_POLICY_FILE": str(policy),
            "BROKER_OFFLINE": "1",
            "BROKER_DATA_DIR": str(work / "broker-data"),
            "BROKER_ISSUER": base,
        }
        serve = [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)]
        with running(serve, port=port, what="attestation-broker serve", log=work / "broker.log", env=env):
            say(f"{' '.join(serve[1:])}  (audit log: {work / 'broker.log'})")

            step("4. Challenge, fresh quote, attest")
            status, challenge = http(base, "POST", "/v1/challenge")
            expect(status == 200, f"challenge failed: {challenge}")
            nonce_hex = challenge["nonce"]
            say(f"POST /v1/challenge -> nonce {nonce_hex[:24]}... (expires {challenge['expires_at']})")
            quote = tpm.quote(bytes.fromhex(nonce_hex), "fresh")
            say(f"tpm2_quote -l {PCRS} -q SHA-256(nonce) -> {len(quote['msg'])}-byte TPMS_ATTEST + signature")
            envelope = {
                "evidence": b64(quote["msg"]),
                "extras": [b64(quote["sig"]), b64(ak_pem), b64(quote["pcrs"])],
                "nonce": nonce_hex,
            }
            status, doc = http(base, "POST", "/v1/attest/tpm", envelope)
            expect(status == 200, f"attestation refused: {doc}")
            token = doc["token"]
            sub = doc["claims"]["submods"]["tpm"]
            say(
                f"POST /v1/attest/tpm -> 200, ear_status {doc['claims']['ear_status']}, "
                f"measurement {sub['ear_attester_claims']['measurement'][:16]}..., "
                f"nonce binding {sub['ear_verifier_claims']['bindings']['nonce']}"
            )

            step("5. Relying party: verify the token with PyJWT against /jwks")
            status, jwks = http(base, "GET", "/jwks")
            kid = jwt.get_unverified_header(token)["kid"]
            key = jwt.PyJWKSet.from_dict(jwks)[kid].key
            claims = jwt.decode(token, key, algorithms=["ES256"], audience="attestation-broker", issuer=base)
            expect(claims["eat_nonce"] == nonce_hex, "token does not carry the nonce")
            lifetime = claims["exp"] - time.time()
            say(f"jwt.decode(...) OK: iss {claims['iss']}, kid {kid[:16]}..., expires in {lifetime:.0f} s")

            step("6. Refusals")
            status, challenge = http(base, "POST", "/v1/challenge")
            tampered = dict(tpm.quote(bytes.fromhex(challenge["nonce"]), "tampered"))
            msg = bytearray(tampered["msg"])
            msg[-40] ^= 0x01  # inside the signed TPMS_ATTEST (the PCR digest)
            bad = {**envelope, "evidence": b64(bytes(msg)), "nonce": challenge["nonce"]}
            bad["extras"] = [b64(tampered["sig"]), b64(ak_pem), b64(tampered["pcrs"])]
            status, problem = http(base, "POST", "/v1/attest/tpm", bad)
            expect((status, problem.get("code")) == (403, "TPM_SIGNATURE_INVALID"), f"tampered quote: {problem}")
            say(f"one bit of the quote flipped -> {status} {problem['code']}: {problem.get('detail')}")
            status, problem = http(base, "POST", "/v1/attest/tpm", envelope)
            expect((status, problem.get("code")) == (403, "NONCE_REPLAYED"), f"replay: {problem}")
            say(f"the first request sent again -> {status} {problem['code']}")


def offline_verify(work: Path) -> None:
    step("7. Offline verification of bundled real evidence (recorded collateral, pinned time)")
    cases = [
        ("snp", ["snp/report.bin", "snp/vcek.der"], "snp/collateral", "2025-06-01T00:00:00Z"),
        ("tdx", ["tdx/quote.dat"], "tdx/collateral", "2026-02-01T00:00:00Z"),
    ]
    for kind, files, collateral, now in cases:
        args = ["verify", kind, *(str(DATA / f) for f in files), "--collateral", str(DATA / collateral), "--now", now]
        proc = subprocess.run([CLI, *args], capture_output=True, text=True, check=False, cwd=work)
        doc = json.loads(proc.stdout)
        shown = " ".join(a if not a.startswith(str(DATA)) else "examples/data/" + a[len(str(DATA)) + 1 :] for a in args)
        say(f"attestation-broker {shown}")
        expect(proc.returncode == 0, f"{kind}: exit {proc.returncode}: {proc.stdout[:500]} {proc.stderr[-500:]}")
        summary = [line for line in proc.stderr.splitlines() if line and not line.startswith("{")]
        say(f"  exit 0, ear_status {doc['ear_status']}" + (f" | {summary[-1]}" if summary else ""))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--workdir", help="keep every file of the run here (default: a temporary directory)")
    args = parser.parse_args(argv)
    missing = [tool for tool in (*TOOLS, "tpm2_flushcontext") if shutil.which(tool) is None]
    if missing:
        print(f"missing {', '.join(missing)}: run `make system-deps` (apt-get install swtpm tpm2-tools)")
        return 2
    with tempfile.TemporaryDirectory(prefix="attestation-broker-demo-") as tmp:
        work = Path(args.workdir).resolve() if args.workdir else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        print(f"attestation-broker demo; files in {work}")
        try:
            tpm_walkthrough(work)
            offline_verify(work)
        except DemoFailed as exc:
            print(f"\nDEMO FAILED: {exc}")
            return 1
    print("\nDemo complete: fresh TPM quote attested, token verified with PyJWT, tampering and replay refused,")
    print("real SNP and TDX evidence verified offline.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
