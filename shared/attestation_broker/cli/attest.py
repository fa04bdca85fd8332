"""``attestation-broker attest``: run inside a confidential VM; collect evidence, bind the broker nonce,
get a verified token (README "From inside a CVM", docs/client.md).

Exit codes: 0 token obtained (affirming or warning), 1 the broker refused (verification or policy) or the
token is contraindicated, 2 bad arguments, 3 something is missing on this machine or the broker exchange
failed (the error names it). ``--print-ak`` prints an AK's public key and SPKI SHA-256 (the policy pin).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation_broker.client import AttestOptions, AttestResult, Machine, attest, watch, write_token
from attestation_broker.client.collect import COLLECTORS, DEFAULT_AK_HANDLE, DEFAULT_TPM_PCRS
from attestation_broker.client.errors import BrokerRefused
from attestation_broker.errors import BrokerError

TSM_ROOT = "/sys/kernel/config/tsm"


def _handle(value: str) -> int:
    try:
        return int(value, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a handle: {value} (e.g. 0x81010002)") from None


def _pcrs(value: str) -> tuple[int, ...]:
    out: list[int] = []
    try:
        for part in value.split(","):
            lo, _, hi = part.partition("-")
            out.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a PCR list: {value} (e.g. 0-7,14)") from None
    if not out or any(not 0 <= p <= 23 for p in out):
        raise argparse.ArgumentTypeError("PCRs are 0..23")
    return tuple(sorted(set(out)))


def _hex(value: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise argparse.ArgumentTypeError("expected hex") from None


def _fail(exc: BrokerError) -> int:
    doc = {"code": exc.code.name, "detail": exc.detail}
    if isinstance(exc, BrokerRefused):
        doc["broker_code"] = exc.broker_code
        sys.stderr.write(f"error: {exc.code.name}: {exc.detail}\n")
        return 1 if exc.broker_status in (401, 403) else 3
    sys.stderr.write(f"error: {exc.code.name}: {exc.detail}\n")
    return exc.exit_code


def _report_renewal_error(exc: BrokerError) -> None:
    sys.stderr.write(f"renewal failed: {exc.code.name}: {exc.detail}\n")


def cmd_print_ak(args: argparse.Namespace) -> int:
    from attestation_broker.evidence.tpm import load_ak_public

    machine = Machine(tcti=args.tcti)
    try:
        tpm = machine.tpm()
        public = tpm.create_ak(persist=args.persist)
    except BrokerError as exc:
        return _fail(exc)
    ak = load_ak_public(public)
    pem = ak.key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    sys.stdout.write(pem)
    persisted = f"{args.persist:#010x}" if args.persist is not None else None
    # What an operator pins: the tpm policy's ak_keys rule ({label, sha256: this value}; docs/policy.md)
    doc = {"ak_public_sha256": ak.spki_sha256, "persisted_at": persisted}
    sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
    return 0


def cmd_attest(args: argparse.Namespace) -> int:
    if args.print_ak:
        return cmd_print_ak(args)
    if not args.broker:
        sys.stderr.write("error: --broker URL is required\n")
        return 2
    machine = Machine(
        tsm_root=Path(args.tsm_root),
        tcti=args.tcti,
        ak_handle=args.ak_handle,
        privlevel=args.privlevel,
        pcrs=args.pcrs,
    )
    options = AttestOptions(
        broker=args.broker, kind=args.kind, user_data=args.user_data or b"", audience=args.audience, machine=machine
    )
    out = Path(args.out) if args.out else None

    def deliver(result: AttestResult) -> None:
        if out is not None:
            write_token(out, result.token)
            sys.stdout.write(result.summary(out) + "\n")
        else:
            sys.stdout.write(result.token + "\n")
            sys.stderr.write(result.summary() + "\n")
        sys.stdout.flush()

    if args.watch:
        if out is None:
            sys.stderr.write("error: --watch needs --out FILE (the token is renewed in place)\n")
            return 2
        watch(
            lambda: attest(options),
            deliver,
            sleep=time.sleep,
            on_error=_report_renewal_error,
            rounds=args.rounds,
        )
        return 0
    try:
        result = attest(options)
        deliver(result)
    except BrokerError as exc:
        return _fail(exc)
    return 0 if result.claims.get("ear_status") in ("affirming", "warning") else 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("attest", help="inside a CVM: collect evidence, bind the broker nonce, get a token")
    p.add_argument("--broker", help="broker base URL, e.g. https://broker.example")
    p.add_argument("--kind", default="auto", choices=("auto", *COLLECTORS), help="evidence kind (default: detect)")
    p.add_argument("--user-data", type=_hex, help="user data (hex) bound together with the nonce")
    p.add_argument("--out", help="write the token here (mode 0600); default: print it on stdout")
    p.add_argument("--watch", action="store_true", help="keep renewing the token in --out before it expires")
    p.add_argument("--rounds", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--audience", help="exchange the token for one for this audience (RFC 8693, /v1/token)")
    p.add_argument("--tcti", help="tpm2-tss TCTI, e.g. swtpm:port=2321 (default: /dev/tpmrm0)")
    p.add_argument("--tsm-root", default=TSM_ROOT, help=f"configfs-tsm root (default {TSM_ROOT})")
    p.add_argument("--privlevel", type=int, choices=(0, 1, 2, 3), help="SEV-SNP VMPL for the configfs-tsm report")
    p.add_argument("--ak-handle", type=_handle, default=DEFAULT_AK_HANDLE, help="AK persistent handle (kind tpm)")
    p.add_argument("--pcrs", type=_pcrs, default=DEFAULT_TPM_PCRS, help="PCRs to quote (kind tpm), e.g. 0-7,14")
    p.add_argument("--print-ak", action="store_true", help="create an AK (endorsement hierarchy), print its key + pin")
    p.add_argument("--persist", type=_handle, help="with --print-ak: persist the AK at this handle")
    p.set_defaults(func=cmd_attest)
