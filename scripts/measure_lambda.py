"""Measure each Lambda handler locally: cold init (import + broker construction), first and warm
invocation latency, and peak RSS — the inputs of the cost table in docs/deploy.md.

Every handler runs in a fresh Python process (a cold Lambda instance) against moto server (KMS,
DynamoDB, S3) on loopback, with AMD collateral pre-seeded in S3 as a previous instance would have left
it (origin unreachable), so an SNP attestation completes with real verification and a KMS signature.

    .venv/bin/python scripts/measure_lambda.py [--warm N] [--json]

Numbers are this machine's (x86_64, CPython of the venv); Lambda arm64 at 1024 MB gets about 0.6 vCPU,
so expect its durations to be up to ~2x these. Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
HANDLERS = ("health", "challenge", "keys", "attest", "verify", "refresh")


def http_event(method: str, path: str, body: Any = None, route: str | None = None) -> dict[str, Any]:
    raw = json.dumps(body) if body is not None else None
    key = f"{method} {route or path}"
    return {
        "version": "2.0",
        "routeKey": key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "x",
            "domainPrefix": "x",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "m"},
            "requestId": "rid",
            "routeKey": key,
            "stage": "$default",
            "time": "23/Nov/2026:12:00:00 +0000",
            "timeEpoch": 1795000000000,
        },
        "body": raw,
        "isBase64Encoded": False,
    }


def snp_envelope() -> dict[str, Any]:
    from tests.support.vectors import vector

    return {"evidence": base64.b64encode(vector("snp/trustee-milan-v2/test-report.bin")).decode(), "product": "Milan"}


class Context:
    function_name = "measure"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:measure"
    aws_request_id = "req"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def peak_rss_mb() -> float:
    """VmHWM: this process's peak RSS. (ru_maxrss would carry the parent's peak across fork+exec.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(name: str, warm: int, token: str | None) -> dict[str, Any]:
    """Runs inside the fresh process: import, first call, warm calls."""
    events = {
        "health": http_event("GET", "/healthz"),
        "challenge": http_event("POST", "/v1/challenge"),
        "keys": http_event("GET", "/jwks"),
        "attest": http_event("POST", "/v1/attest/snp", snp_envelope(), route="/v1/attest/{kind}"),
        "verify": http_event("POST", "/v1/verify", {"token": token}),
        "refresh": {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
    }
    rss_start = peak_rss_mb()
    t0 = time.perf_counter()
    module = __import__(f"functions.{name}", fromlist=["handler"])
    t_import = time.perf_counter() - t0
    rss_import = peak_rss_mb()
    # Construction (Settings, verifier registry, boto3 clients, keyring) happens at the first call;
    # trigger it explicitly to time it apart from the request itself.
    tc = time.perf_counter()
    if name == "refresh":
        module._build()
    else:
        __import__("functions._http", fromlist=["api"]).api()
    t_construct = time.perf_counter() - tc
    t1 = time.perf_counter()
    first = module.handler(events[name], Context())
    t_first = time.perf_counter() - t1
    durations = []
    for _ in range(warm):
        t = time.perf_counter()
        module.handler(events[name], Context())
        durations.append(time.perf_counter() - t)
    status = first.get("statusCode", 200) if isinstance(first, dict) else 200
    out: dict[str, Any] = {
        "handler": name,
        "status": status,
        "interpreter_rss_mb": rss_start,
        "import_ms": t_import * 1000,
        "rss_after_import_mb": rss_import,
        "construct_ms": t_construct * 1000,
        "first_call_ms": t_first * 1000,
        "warm_median_ms": statistics.median(durations) * 1000 if durations else None,
        "peak_rss_mb": peak_rss_mb(),
        "boto3_loaded": "boto3" in sys.modules,
    }
    if status >= 400:
        out["problem"] = json.loads(first["body"]).get("code")
    if name == "attest" and status == 200:
        out["token"] = json.loads(first["body"])["token"]
        out["token_bytes"] = len(out["token"])
    return out


def parent(warm: int) -> list[dict[str, Any]]:
    import logging

    from attestation_broker.aws.clients import make_client
    from attestation_broker.evidence.snp.abi import TcbVersion, parse_report
    from attestation_broker.evidence.snp.kds import vcek_url
    from attestation_broker.trust.cache import CachedObject, CollateralCache
    from attestation_broker.trust.refresh import COLLATERAL_TYPES
    from moto.server import ThreadedMotoServer

    from tests.support.moto_kms import honour_message_type
    from tests.support.replay import replay_server
    from tests.support.vectors import vector

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    honour_message_type()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    kms = make_client("kms", endpoint_url=endpoint, **CREDENTIALS)
    key_arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    dynamodb = make_client("dynamodb", endpoint_url=endpoint, **CREDENTIALS)
    dynamodb.create_table(
        TableName="ledger",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    s3 = make_client("s3", endpoint_url=endpoint, **CREDENTIALS)
    s3.create_bucket(Bucket="cache")
    results = []
    with replay_server() as kds:  # every route 404 → the vendor is "down" for anything not in S3
        report = parse_report(vector("snp/trustee-milan-v2/test-report.bin"))
        fetched = datetime(2025, 6, 1, tzinfo=UTC)
        seeds = {
            vcek_url(kds.base_url, "Milan", report.chip_id, TcbVersion.decode(report.reported_tcb_raw, "Milan")): (
                vector("snp/trustee-milan-v2/test-vcek.der"),
                "vcek",
            ),
            kds.base_url + "/vcek/v1/Milan/crl": (vector("roots/amd/amd_milan_vcek_crl.pem"), "crl"),
        }
        for url, (body, kind) in seeds.items():
            expires = COLLATERAL_TYPES[kind].expires(body, fetched)
            obj = CachedObject(url, body, fetched, expires, "origin", collateral_type=kind)
            s3.put_object(Bucket="cache", Key=CollateralCache.key(url), Body=obj.encode())
        kds.add("/vcek/v1/Milan/crl", b"down", status=503)
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "BROKER_SIGNER": f"kms:{key_arn}",
            "BROKER_LEDGER": "dynamodb:ledger",
            "BROKER_CACHE": "s3:cache",
            "BROKER_NONCE_SECRET": os.urandom(32).hex(),
            "BROKER_ISSUER": "https://broker.example",
            "BROKER_AMD_KDS_URL": kds.base_url,
            "BROKER_COLLATERAL_STALE_GRACE_SECONDS": str(3 * 365 * 86400),
            "BROKER_DATA_DIR": str(ROOT / "build" / "measure-data"),
        }
        token = ""
        for name in HANDLERS:
            command = [sys.executable, __file__, "--child", name, "--warm", str(warm), "--token", token]
            done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False, timeout=300)
            if done.returncode != 0:
                raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["status"] >= 500:
                print(done.stderr[-2000:], file=sys.stderr)
            token = result.pop("token", token)
            results.append(result)
    server.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--child")
    parser.add_argument("--warm", type=int, default=20)
    parser.add_argument("--token", default="")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.warm, args.token or None)))
        return
    results = parent(args.warm)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    header = ("handler", "status", "import ms", "construct ms", "1st call ms", "warm ms", "peak RSS MB", "boto3")
    print("{:10} {:>6} {:>10} {:>12} {:>12} {:>8} {:>12} {}".format(*header))
    for r in results:
        warm = f"{r['warm_median_ms']:.1f}" if r["warm_median_ms"] is not None else "-"
        print(
            f"{r['handler']:10} {r['status']:>6} {r['import_ms']:>10.0f} {r['construct_ms']:>12.0f}"
            f" {r['first_call_ms']:>12.1f} {warm:>8}"
            f" {r['peak_rss_mb']:>12.0f} {r['boto3_loaded']}"
        )
    attest = next(r for r in results if r["handler"] == "attest")
    base = results[0]["interpreter_rss_mb"]
    print(f"attest token: {attest.get('token_bytes')} bytes; RSS before importing the handler: {base:.0f} MB")


if __name__ == "__main__":
    main()
