"""Benchmark of the ``tpm`` kind: median verification latency beside the floor and tpm2_checkquote.

Run: ``.venv/bin/python -m bench.bench_tpm``. Prints, never asserts.

- tpm kind: the full TpmVerifier.verify on the Azure 2024-02 quote (bare RSA-2048 signature, 24 PCRs, pinned AK);
- floor: the same RSA PKCS#1 v1.5 verify with ``cryptography`` + SHA-256 of the 24 PCR values;
- tpm2_checkquote on a swtpm quote's files (subprocess: includes process start), beside our verify of the same
  files (skipped with a note when swtpm/tpm2-tools are missing);
- GCE event logs: parsing (every event checked and located; then with every Event object built, which verification
  never needs), replay, verify_event_log on a log not seen before, the same call again (memoized by content), and
  the share of replay.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess

from attestation_broker.binding import ExpectedBinding
from attestation_broker.evidence.tpm import eventlog, load_ak_public, parse_event_log, replay, verify_event_log
from attestation_broker.evidence.tpm.kind import TpmVerifier
from attestation_broker.verifier import Submission
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from bench.harness import interleaved_us, median_us, record, report
from tests.support.context import offline_context
from tests.support.vectors import vector
from tests.unit.tpm.helpers import NOW, azure_bincode


def bench_azure() -> None:
    q = azure_bincode(vector("tpm/azure-vtpm-quote-2024-02.bincode"))
    ak_pem = vector("tpm/azure-vtpm-quote-2024-02.akpub.pem")
    ak = load_ak_public(ak_pem)
    key = ak.key
    assert isinstance(key, rsa.RSAPublicKey)
    pcr_json = ("{" + '"sha256": {' + ",".join(f'"{i}": "{v.hex()}"' for i, v in q.pcrs.items()) + "}}").encode()
    verifier = TpmVerifier()
    context = offline_context(NOW)
    sub = Submission(q.message, extras=(q.signature, ak_pem, pcr_json))

    def floor() -> None:
        key.verify(q.signature, q.message, padding.PKCS1v15(), hashes.SHA256())
        hashlib.sha256(b"".join(q.pcrs[i] for i in range(24))).digest()

    timed = interleaved_us(
        {
            "floor: RSA verify + PCR digest (cryptography)": floor,
            "tpm kind verify (parse, AK load, sig, PCRs)": lambda: verifier.verify(sub, context),
        },
        runs=1000,
    )
    rows = list(timed.items())
    report("tpm: Azure vTPM quote (RSA-2048 bare signature, 24 PCRs)", rows, floor=rows[0][0])
    ratio = rows[1][1] / rows[0][1]
    record("TPM verify (Azure vTPM quote)", f"{ratio:.2f}x floor", "keep: <= 7.5x", ratio <= 7.5)


def bench_checkquote() -> None:
    if shutil.which("swtpm") is None or shutil.which("tpm2_checkquote") is None:
        print("== tpm2_checkquote: skipped (swtpm / tpm2-tools not installed)")
        return
    from tests.support.swtpm import swtpm_instance

    binding = ExpectedBinding(b"bench-nonce")
    extra = binding.tpm_extra_data().hex()
    with swtpm_instance() as t:
        t.run("tpm2_createek", "-c", "ek.ctx", "-G", "rsa", "-u", "ek.pub")
        t.run(
            "tpm2_createak",
            "-C",
            "ek.ctx",
            "-c",
            "ak.ctx",
            "-G",
            "rsa",
            "-g",
            "sha256",
            "-s",
            "rsassa",
            "-u",
            "ak.pub",
            "-r",
            "ak.priv",
        )
        t.flush()
        t.run(
            "tpm2_quote",
            "-c",
            "ak.ctx",
            "-l",
            "sha256:0,1,2,3,4,5,6,7",
            "-q",
            extra,
            "-m",
            "msg",
            "-s",
            "sig",
            "-o",
            "pcrs",
            "-g",
            "sha256",
        )
        t.flush()
        files = {n: t.path(n).read_bytes() for n in ("msg", "sig", "ak.pub", "pcrs")}
        cmd = ["tpm2_checkquote", "-u", "ak.pub", "-m", "msg", "-s", "sig", "-f", "pcrs", "-g", "sha256", "-q", extra]

        def checkquote() -> None:
            subprocess.run(cmd, cwd=t.workdir, capture_output=True, check=True)

        verifier = TpmVerifier()
        context = offline_context(NOW)
        sub = Submission(files["msg"], extras=(files["sig"], files["ak.pub"], files["pcrs"]), binding=binding)
        key = load_ak_public(files["ak.pub"]).key
        assert isinstance(key, rsa.RSAPublicKey)
        sig = files["sig"][6:]
        report(
            "tpm: swtpm quote files (RSA-2048 TPMT_SIGNATURE, 8 PCRs)",
            [
                (
                    "floor: RSA verify (cryptography)",
                    median_us(lambda: key.verify(sig, files["msg"], padding.PKCS1v15(), hashes.SHA256())),
                ),
                ("tpm kind verify", median_us(lambda: verifier.verify(sub, context))),
                ("tpm2_checkquote (subprocess, incl. process start)", median_us(checkquote, runs=30, warmup=3)),
            ],
            floor="floor: RSA verify (cryptography)",
        )


def bench_eventlogs() -> None:
    for name in ("tpm/gce-eventlog-ubuntu-2404-amd-sevsnp.bin", "tpm/gce-eventlog-confidential-gke-debug-251000.bin"):
        raw = vector(name)
        log = parse_event_log(raw)
        quoted = replay(log, "sha256")

        def verify(raw: bytes = raw, quoted: dict[int, bytes] = quoted) -> None:
            eventlog._VERIFIED.clear()  # a log not seen before: parse, replay, compare, facts
            verify_event_log(raw, quoted, "sha256")

        full = median_us(verify)
        memo = median_us(lambda raw=raw, quoted=quoted: verify_event_log(raw, quoted, "sha256"))
        parse = median_us(lambda raw=raw: parse_event_log(raw))
        events = median_us(lambda raw=raw: parse_event_log(raw).events)
        rep = median_us(lambda log=log: replay(log, "sha256"))
        report(
            f"event log {name.split('/')[-1]} ({len(log.events)} events, {len(raw)} bytes)",
            [
                ("parse (checks and locates every event)", parse),
                ("parse + .events (builds every Event)", events),
                ("replay sha256", rep),
                ("verify_event_log (parse+replay+compare+facts)", full),
                ("verify_event_log, same log and PCRs again (memo)", memo),
            ],
        )
        print(f"  replay share of verify_event_log: {100 * rep / full:.0f}%")


def main() -> None:
    bench_azure()
    bench_checkquote()
    bench_eventlogs()


if __name__ == "__main__":
    main()
