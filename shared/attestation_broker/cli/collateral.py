"""``attestation-broker collateral``: make collateral bundles for offline and air-gapped use (docs/collateral.md).

* ``collateral fetch KIND EVIDENCE [EXTRA...] --out DIR`` verifies the evidence once, online, and writes exactly
  the collateral that verification fetched into the bundle at DIR (Intel objects as one dcap-qvl document per
  FMSPC and PCK CA; AMD and other objects by key).
* ``collateral import --out DIR FILE...`` adds files obtained elsewhere: dcap-qvl ``QuoteCollateralV3`` JSON,
  PEM/DER CRLs (AMD or Intel: product and signer recognized from the CRL issuer), VCEK certificates and
  ASK/ARK chains. Every file is checked for shape; signatures are verified when the bundle is used, exactly
  like fetched collateral.
* ``collateral upload DIR --cache s3:BUCKET[/PREFIX]`` seeds the broker's S3 collateral store from a bundle.

Output is one JSON object on stdout; exit 0 on success, 2 for unusable input, 1 when the evidence itself
failed verification (the bundle is still written: the collateral was fetched).
"""

from __future__ import annotations

import argparse
import sys
import urllib.parse
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from attestation_broker.api.envelope import Envelope
from attestation_broker.audit.sinks import StdoutSink
from attestation_broker.bootstrap import build_broker
from attestation_broker.cli.common import error_doc, parse_time, print_json, read_submission_files
from attestation_broker.config import Settings
from attestation_broker.errors import COLLATERAL_BUNDLE_INVALID, BrokerError
from attestation_broker.evidence.tdx.collateral import TdxCollateral, looks_like_dcap_qvl_json
from attestation_broker.token.keys import KeyRing
from attestation_broker.token.signers import LocalSigner
from attestation_broker.trust.bundle import Bundle, BundleWriter, key_for_url, tdx_key
from attestation_broker.trust.cache import (
    ISSUER_CHAIN_HEADERS,
    CachedObject,
    CollateralCache,
    issuer_chain_from_headers,
)
from attestation_broker.trust.fetch import Fetcher, FetchResponse, HttpFetcher
from attestation_broker.trust.refresh import COLLATERAL_TYPES
from attestation_broker.trust.upstreams import build_fetcher
from attestation_broker.usecases import RequestMeta

AMD_PRODUCTS = ("Milan", "Genoa", "Turin")


class RecordingFetcher:
    """Passes every fetch through and remembers each successful response (for ``collateral fetch``)."""

    def __init__(self, inner: Fetcher) -> None:
        self.inner = inner
        self.responses: list[FetchResponse] = []

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        response = self.inner.get(url, timeout=timeout)
        self.responses.append(FetchResponse(url=url, body=response.body, headers=response.headers))
        return response


def _chain_headers(headers: Any) -> dict[str, str]:
    return {k: v for k, v in dict(headers).items() if k.lower() in ISSUER_CHAIN_HEADERS}


def _intel_part(url: str, settings: Settings) -> tuple[str, str] | None:
    """("tcb_info"|"qe_identity"|"pck_crl"|"root_crl", qualifier) for an Intel collateral URL, else None."""
    if url == settings.intel_root_crl_url:
        return "root_crl", ""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qs(parts.query)
    if parts.path.endswith("/tdx/certification/v4/tcb"):
        return "tcb_info", query.get("fmspc", [""])[0].upper()
    if parts.path.endswith("/tdx/certification/v4/qe/identity"):
        return "qe_identity", ""
    if parts.path.endswith("/certification/v4/pckcrl"):
        return "pck_crl", query.get("ca", ["platform"])[0]
    return None


def write_recorded(writer: BundleWriter, responses: list[FetchResponse], settings: Settings) -> list[str]:
    """Write what one verification fetched: Intel parts joined into dcap-qvl documents, the rest by key."""
    keys: list[str] = []
    intel: dict[str, dict[str, FetchResponse]] = {"tcb_info": {}, "qe_identity": {}, "pck_crl": {}, "root_crl": {}}
    for response in responses:
        part = _intel_part(response.url, settings)
        if part is not None:
            intel[part[0]][part[1]] = response
            continue
        key = key_for_url(response.url)
        kind = "crl" if response.url.endswith("/crl") else ("vcek" if "/vcek/v1/" in response.url else "object")
        writer.put(key, response.body, kind=kind, source=response.url, headers=_chain_headers(response.headers))
        keys.append(key)
    qe, root = intel["qe_identity"].get(""), intel["root_crl"].get("")
    for fmspc, tcb in intel["tcb_info"].items():
        for ca, pck in intel["pck_crl"].items():
            if qe is None or root is None:
                continue
            collateral = TdxCollateral.from_pcs_bodies(
                tcb.body,
                qe.body,
                pck.body,
                root.body,
                tcb_info_issuer_chain=issuer_chain_from_headers(tcb.headers),
                qe_identity_issuer_chain=issuer_chain_from_headers(qe.headers),
                pck_crl_issuer_chain=issuer_chain_from_headers(pck.headers),
            )
            key = tdx_key(fmspc, ca)
            writer.put(key, collateral.to_dcap_qvl_json().encode(), kind="dcap-qvl", source=tcb.url)
            keys.append(key)
    return keys


def cmd_fetch(args: argparse.Namespace) -> int:
    now: datetime = args.now or datetime.now(UTC)
    settings = Settings.from_env(ledger="off", cache="memory", nonce_secret="00" * 32, collateral_dir="")
    files = read_submission_files(args)
    if files is None:
        return 2
    evidence, extras = files
    recorder = RecordingFetcher(build_fetcher(settings, HttpFetcher()))
    verdict: dict[str, Any]
    code = 0
    try:
        broker = build_broker(
            settings,
            keyring=KeyRing(LocalSigner.generate()),
            fetcher=recorder,
            sink=StdoutSink(sys.stderr),
            clock=lambda: now,
        )
        result = broker.attest(
            args.kind, Envelope(evidence=evidence, extras=extras), RequestMeta("cli", f"cli:collateral:{args.kind}")
        )
        verdict = {"ear_status": result.claims["ear_status"]}
    except BrokerError as exc:
        verdict = {"ear_status": None, "error": error_doc(exc)}
        code = exc.exit_code
    if not recorder.responses:
        print_json({"kind": args.kind, "bundle": None, "objects": [], **verdict})
        return code or 2
    try:
        writer = BundleWriter(Path(args.out))
        keys = write_recorded(writer, recorder.responses, settings)
        writer.save()
    except BrokerError as exc:
        print_json({"kind": args.kind, "bundle": None, "error": error_doc(exc)})
        return exc.exit_code
    print_json({"kind": args.kind, "bundle": str(Path(args.out)), "objects": keys, **verdict})
    return 1 if code == 1 else 0


# --- import ----------------------------------------------------------------------------------------


def _cn(name: x509.Name) -> str:
    attrs = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(attrs[0].value) if attrs else ""


def _crl(data: bytes) -> x509.CertificateRevocationList | None:
    try:
        if data.lstrip().startswith(b"-----BEGIN X509 CRL"):
            return x509.load_pem_x509_crl(data.strip())
        if data[:1] == b"\x30":
            return x509.load_der_x509_crl(data)
    except ValueError:
        return None
    return None


def _certs(data: bytes) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN CERTIFICATE" in data:
            return x509.load_pem_x509_certificates(data)
        if data[:1] == b"\x30":
            return [x509.load_der_x509_certificate(data)]
    except ValueError:
        return []
    return []


def _product(cn: str, prefix: str) -> str | None:
    # AMD names: ARK-<product>, SEV-<product> (ASK), SEV-VLEK-<product> (ASVK).
    rest = cn.removeprefix(prefix)
    return rest if cn.startswith(prefix) and rest in AMD_PRODUCTS else None


@dataclass
class _Import:
    writer: BundleWriter
    tdx_docs: dict[str, TdxCollateral]
    done: list[dict[str, str]]


def _import_dcap(state: _Import, name: str, data: bytes) -> None:
    try:
        collateral = TdxCollateral.from_dcap_qvl_json(data)
    except BrokerError as exc:
        raise COLLATERAL_BUNDLE_INVALID(f"{name}: {exc.detail}") from None
    fmspc = str(collateral.tcb_info.body.get("fmspc", "")).upper()
    crl = _crl(collateral.pck_crl) if collateral.pck_crl is not None else None
    ca = "processor" if crl is not None and "Processor" in _cn(crl.issuer) else "platform"
    if len(fmspc) != 12:
        raise COLLATERAL_BUNDLE_INVALID(f"{name}: TCB info has no FMSPC")
    key = tdx_key(fmspc, ca)
    state.tdx_docs[key] = collateral
    state.writer.put(key, data, kind="dcap-qvl", source=name)
    state.done.append({"file": name, "as": key})


def _newer(crl: x509.CertificateRevocationList, current: bytes) -> bool:
    old = _crl(current) or (_crl(bytes.fromhex(current.decode())) if current[:1] != b"\x30" else None)
    return old is None or crl.last_update_utc > old.last_update_utc


def _import_crl(state: _Import, name: str, crl: x509.CertificateRevocationList) -> None:
    issuer = _cn(crl.issuer)
    der = crl.public_bytes(Encoding.DER)
    product = _product(issuer, "ARK-")
    if product is not None:
        for kind in ("vcek", "vlek"):  # AMD signs one CRL per product with the ARK; KDS serves it at both paths
            key = f"amd/{kind}/v1/{product}/crl"
            state.writer.put(key, der, kind="crl", source=name)
        state.done.append({"file": name, "as": f"amd/vcek|vlek/v1/{product}/crl"})
        return
    if issuer in ("Intel SGX Root CA", "Intel SGX PCK Platform CA", "Intel SGX PCK Processor CA"):
        field = "root_crl" if issuer == "Intel SGX Root CA" else "pck_crl"
        ca = "processor" if "Processor" in issuer else "platform"
        targets = [k for k in state.tdx_docs if field == "root_crl" or k.endswith("/" + ca)]
        if not targets:
            raise COLLATERAL_BUNDLE_INVALID(
                f"{name}: an Intel CRL ({issuer}) is kept inside TDX collateral: import the dcap-qvl JSON first"
            )
        for key in targets:
            current = state.tdx_docs[key]
            if _newer(crl, getattr(current, field)):
                updated = replace(current, root_crl=der) if field == "root_crl" else replace(current, pck_crl=der)
                state.tdx_docs[key] = updated
                state.writer.put(key, updated.to_dcap_qvl_json().encode(), kind="dcap-qvl", source=name)
        state.done.append({"file": name, "as": ", ".join(targets)})
        return
    raise COLLATERAL_BUNDLE_INVALID(f"{name}: CRL issuer {issuer[:80]!r} is neither AMD nor Intel")


def _import_certs(state: _Import, name: str, certs: list[x509.Certificate]) -> None:
    from attestation_broker.evidence.snp.abi import TcbVersion
    from attestation_broker.evidence.snp.certs import leaf_info
    from attestation_broker.evidence.snp.kds import vcek_url

    if len(certs) == 2 and _product(_cn(certs[1].subject), "ARK-"):
        product = _product(_cn(certs[1].subject), "ARK-")
        kind = "vlek" if _cn(certs[0].subject).startswith("SEV-VLEK-") else "vcek"
        pem = b"".join(c.public_bytes(Encoding.PEM) for c in certs)
        key = f"amd/{kind}/v1/{product}/cert_chain"
        state.writer.put(key, pem, kind="cert_chain", source=name)
        state.done.append({"file": name, "as": key})
        return
    if len(certs) == 1:
        der = certs[0].public_bytes(Encoding.DER)
        try:
            info = leaf_info(der)
        except BrokerError:
            raise COLLATERAL_BUNDLE_INVALID(f"{name}: a certificate that is not an AMD VCEK") from None
        if info.kind == "vlek":
            raise COLLATERAL_BUNDLE_INVALID(
                f"{name}: a VLEK is not served by AMD KDS; pass it with the evidence (an extra or the 'vlek' field)"
            )
        product = info.product or _product(_cn(certs[0].issuer), "SEV-")
        if product is None or info.hwid is None:
            raise COLLATERAL_BUNDLE_INVALID(f"{name}: VCEK names no known product or hwID")
        tcb = TcbVersion(info.bootloader, info.tee, info.snp, info.microcode, info.fmc)
        key = key_for_url(vcek_url("https://kds.invalid", product, info.hwid, tcb))
        state.writer.put(key, der, kind="vcek", source=name)
        state.done.append({"file": name, "as": key})
        return
    raise COLLATERAL_BUNDLE_INVALID(f"{name}: {len(certs)} certificates are neither a VCEK nor an ASK/ARK chain")


def cmd_import(args: argparse.Namespace) -> int:
    try:
        writer = BundleWriter(Path(args.out))
        state = _Import(writer, {}, [])
        for obj in list(writer.objects.values()):
            if obj.type == "dcap-qvl":
                found = Bundle.open(writer.root).read(obj.key)
                if found is not None:
                    state.tdx_docs[obj.key] = TdxCollateral.from_dcap_qvl_json(found[0])
        files: list[tuple[str, bytes]] = []
        for path in args.files:
            try:
                files.append((str(path), Path(path).read_bytes()))
            except OSError as exc:
                raise COLLATERAL_BUNDLE_INVALID(f"{path}: {exc.strerror}") from None
        # dcap-qvl documents first: Intel CRLs given on the same command line update them.
        files.sort(key=lambda f: not looks_like_dcap_qvl_json(f[1]))
        for name, data in files:
            if looks_like_dcap_qvl_json(data):
                _import_dcap(state, name, data)
            elif (crl := _crl(data)) is not None:
                _import_crl(state, name, crl)
            elif certs := _certs(data):
                _import_certs(state, name, certs)
            else:
                raise COLLATERAL_BUNDLE_INVALID(f"{name}: not dcap-qvl JSON, a CRL or certificates")
        writer.save()
    except BrokerError as exc:
        print_json({"bundle": None, "error": error_doc(exc)})
        return exc.exit_code
    print_json({"bundle": str(Path(args.out)), "imported": state.done})
    return 0


# --- upload ----------------------------------------------------------------------------------------


def cmd_upload(args: argparse.Namespace) -> int:
    """Seed the shared collateral store (``BROKER_CACHE``) with a bundle's AMD and by-URL objects.

    TDX collateral stays in bundles (a broker reads it with BROKER_COLLATERAL_DIR): the store keeps PCS
    response bodies, and a dcap-qvl document is never re-glued into one.
    """
    from attestation_broker.bootstrap import build_store

    settings = Settings.from_env()
    if args.cache:
        settings = replace(settings, cache=args.cache)
    try:
        bundle = Bundle.open(Path(args.bundle))
        store = build_store(settings)
        if store is None:
            raise COLLATERAL_BUNDLE_INVALID("BROKER_CACHE=memory has no shared store to upload to")
        now = datetime.now(UTC)
        uploaded, skipped = [], []
        for obj in bundle:
            if obj.key.startswith("amd/"):
                url = settings.amd_kds_url.rstrip("/") + obj.key[3:]
            elif obj.key.startswith("url:"):
                url = obj.key[4:]
            else:
                skipped.append(obj.key)
                continue
            found = bundle.read(obj.key)
            assert found is not None
            kind = COLLATERAL_TYPES.get(obj.type)
            expires = kind.expires(found[0], now) if kind is not None else None
            cached = CachedObject(url, found[0], now, expires, "origin", collateral_type=obj.type)
            store.put(CollateralCache.key(url), cached.encode())
            uploaded.append(url)
    except BrokerError as exc:
        print_json({"uploaded": [], "error": error_doc(exc)})
        return exc.exit_code
    print_json({"uploaded": uploaded, "kept_in_bundle": skipped, "cache": settings.cache})
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    col = sub.add_parser("collateral", help="make and use collateral bundles (offline / air-gapped operation)")
    cmds = col.add_subparsers(dest="collateral_command", required=True)
    fetch = cmds.add_parser("fetch", help="fetch exactly the collateral this evidence needs into a bundle")
    fetch.add_argument("kind")
    fetch.add_argument("evidence")
    fetch.add_argument("extra", nargs="*", help="extra files, as for 'verify'")
    fetch.add_argument("--out", required=True, help="bundle directory (created or extended)")
    fetch.add_argument("--now", type=parse_time, help="pin the clock (ISO 8601)")
    fetch.set_defaults(func=cmd_fetch)
    imp = cmds.add_parser("import", help="add dcap-qvl JSON, CRLs, VCEKs or ASK/ARK chains to a bundle")
    imp.add_argument("--out", required=True, help="bundle directory (created or extended)")
    imp.add_argument("files", nargs="+")
    imp.set_defaults(func=cmd_import)
    up = cmds.add_parser("upload", help="seed the shared collateral store (e.g. S3) from a bundle")
    up.add_argument("bundle")
    up.add_argument("--cache", help="store spec as BROKER_CACHE (e.g. s3:my-bucket/collateral)")
    up.set_defaults(func=cmd_upload)
