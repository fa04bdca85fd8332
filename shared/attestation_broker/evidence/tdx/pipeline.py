"""The order of the TDX checks (Intel TDX DCAP quote verification; the body of
:func:`attestation_broker.evidence.tdx.verify_tdx_evidence`; each step lives in its own module).

Chain of trust, in the order :func:`run` checks it (fail closed; each step raises a typed error; the matching
``# Step N`` comment marks its code):

1. Parse: the quote (v4/v5) and its certification data (:mod:`.abi`).
2. PCK chain: PCK leaf → PCK Platform/Processor CA → the pinned Intel SGX Root CA, valid at ``now``
   (:mod:`.pck`); the PCK extensions (FMSPC, PCE ID, TCB components) read from the leaf.
3. Quote signatures: the QE report signed by the PCK key, the attestation key hashed into the QE report data,
   the quote body signed by the attestation key (:mod:`.checks`).
4. Binding: REPORTDATA equals the expected value when a nonce was requested.
5. Collateral: supplied or fetched from Intel PCS (:mod:`.collateral`); signatures checked before caching.
6. Root CRL (signed by the root, fresh): the PCK CA is not revoked.
7. PCK CRL (signed by the PCK CA, fresh): the PCK leaf is not revoked.
8. TCB info: TCB Signing chain to the pinned root, not revoked, signature, TDX id and version, fresh, FMSPC and
   PCE ID equal the PCK certificate's.
9. QE identity: TCB Signing chain to the pinned root, not revoked, signature, fresh.
10. TCB evaluation: the platform and TD TCB levels, the QE identity's TCB status (:mod:`.tcb`).
11. Appraisal and claims: AR4SI vector (:mod:`.appraise`), normalized claims (:mod:`.claims`).

With ``revocation = skip`` (docs/evidence.md, "Revocation") Steps 6 and 7 and the "not revoked" parts of Steps 8 and
9 are left out: the Intel root and PCK CRLs are neither fetched nor required. Every other step is unchanged; the
broker records the skip and caps the result at warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509

from attestation_broker import revocation
from attestation_broker.binding import require_equal
from attestation_broker.errors import COLLATERAL_INVALID, COLLATERAL_UNAVAILABLE, MALFORMED_EVIDENCE
from attestation_broker.evidence.common import LruMemo
from attestation_broker.evidence.tdx import appraise as appraisal
from attestation_broker.evidence.tdx.abi import Quote, parse_quote
from attestation_broker.evidence.tdx.checks import (
    VerifiedCrl,
    chain_signer,
    check_window,
    crl_next_update,
    require_not_revoked,
    verify_crl,
    verify_qe_identity,
    verify_quote_signatures,
    verify_tcb_info,
)
from attestation_broker.evidence.tdx.claims import attester_claims, iso_utc
from attestation_broker.evidence.tdx.collateral import (
    Checks,
    CollateralRecord,
    TdxCollateral,
    bundled_collateral,
    collateral_urls,
    fetch_collateral,
)
from attestation_broker.evidence.tdx.errors import TDX_FMSPC_MISMATCH, TDX_TCB_INFO_NOT_TDX
from attestation_broker.evidence.tdx.pck import PckChain, check_validity, verify_pck_chain
from attestation_broker.evidence.tdx.pcs import QeIdentity, TcbInfo, split_signed
from attestation_broker.evidence.tdx.result import TcbResult, TdxResult
from attestation_broker.evidence.tdx.tcb import evaluate_tcb
from attestation_broker.evidence.tdx.trust import TdxTrust, intel_trust
from attestation_broker.verifier import VerifyContext


@dataclass(frozen=True)
class _SignedCollateral:
    """What the collateral's signatures and parsing yield, independent of time and of the quote.

    Memoized by the content of the collateral (the exact bytes of both CRLs, both signed JSON pairs and both issuer
    chains) together with the PCK CA certificate and the pinned root: the same cached collateral serves every quote
    of a platform, so its CRL signatures, TCB Signing chains and JSON parsing are done once. Validity windows,
    certificate validity and revocation are judged by the caller at every use (the TCB Signing path is verified at
    the time of the first computation; its validity is re-checked at each use in Steps 8 and 9).
    The CRLs are None when revocation is skipped (they are then not verified even if supplied).
    """

    intermediate: x509.Certificate  # the PCK CA this entry was computed for (identity-checked on a hit)
    root: x509.Certificate
    root_crl: VerifiedCrl | None
    pck_crl: VerifiedCrl | None
    tcb_signing: x509.Certificate
    info: TcbInfo
    qe_signing: x509.Certificate
    identity: QeIdentity


_SIGNED = LruMemo(256)


def _signed_collateral(
    collateral: TdxCollateral, chain: PckChain, anchors: TdxTrust, now: datetime, skew: timedelta, *, crls: bool
) -> _SignedCollateral:
    def compute() -> _SignedCollateral:
        # Same order as the checks are documented: root CRL (it vouches for the PCK CA and the TCB Signing
        # certificate), PCK CRL, then each signed JSON with its TCB Signing chain.
        root_crl = pck_crl = None
        if crls:
            if collateral.root_crl is None or collateral.pck_crl is None:
                missing = "root CRL" if collateral.root_crl is None else "PCK CRL"
                raise COLLATERAL_UNAVAILABLE(f"the Intel {missing} was not supplied with the TDX collateral")
            root_crl = verify_crl(collateral.root_crl, anchors.root, "root CRL")
            pck_crl = verify_crl(collateral.pck_crl, chain.intermediate, "PCK CRL")
        tcb_signing = chain_signer(collateral.tcb_info_issuer_chain, anchors, now, skew)
        info = verify_tcb_info(collateral.tcb_info, tcb_signing)
        qe_signing = chain_signer(collateral.qe_identity_issuer_chain, anchors, now, skew)
        identity = verify_qe_identity(collateral.qe_identity, qe_signing)
        return _SignedCollateral(
            chain.intermediate, anchors.root, root_crl, pck_crl, tcb_signing, info, qe_signing, identity
        )

    # Certificates are keyed by identity (hashing one re-hashes its DER): the PCK chain and the trust anchors are
    # memoized objects, and the entry keeps them alive, so an id cannot be reused while the entry exists.
    key = (
        crls,
        collateral.root_crl if crls else None,
        collateral.pck_crl if crls else None,
        collateral.tcb_info.signed,
        collateral.tcb_info.signature,
        collateral.qe_identity.signed,
        collateral.qe_identity.signature,
        collateral.tcb_info_issuer_chain,
        collateral.qe_identity_issuer_chain,
        id(chain.intermediate),
        id(anchors.root),
    )
    found = _SIGNED.get(key, compute)
    if found.intermediate is not chain.intermediate or found.root is not anchors.root:
        return compute()
    return found


def _json_next_update(key: str) -> Any:
    def expires(body: bytes) -> datetime | None:
        inner = split_signed(body, key).body
        try:
            return datetime.fromisoformat(str(inner["nextUpdate"]).replace("Z", "+00:00"))
        except (KeyError, ValueError):
            raise COLLATERAL_INVALID(f"{key}.nextUpdate is missing or not a date") from None

    return expires


def _checks(trust: TdxTrust, chain: PckChain, now: datetime, skew: timedelta) -> dict[str, Checks]:
    """Signature and certificate-path validation before anything fetched is cached (collateral windows are judged
    per use).

    TCB info and QE identity are checked with the TCB Signing certificate from the issuer chain the
    origin sent with them (verified to the pinned root): nothing but the root is pinned.
    """

    def tcb(body: bytes, issuer_chain: bytes | None) -> None:
        verify_tcb_info(split_signed(body, "tcbInfo"), chain_signer(issuer_chain, trust, now, skew))

    def qe(body: bytes, issuer_chain: bytes | None) -> None:
        verify_qe_identity(split_signed(body, "enclaveIdentity"), chain_signer(issuer_chain, trust, now, skew))

    def pck_crl(body: bytes, _issuer_chain: bytes | None) -> None:
        verify_crl(body, chain.intermediate, "PCK CRL")

    def root_crl(body: bytes, _issuer_chain: bytes | None) -> None:
        verify_crl(body, trust.root, "root CRL")

    return {
        "tcb_info": Checks(_json_next_update("tcbInfo"), tcb, chained=True),
        "qe_identity": Checks(_json_next_update("enclaveIdentity"), qe, chained=True),
        "pck_crl": Checks(crl_next_update, pck_crl),
        "root_crl": Checks(crl_next_update, root_crl),
    }


_TCB = LruMemo(1024)


def _evaluate_tcb(info: TcbInfo, identity: QeIdentity, quote: Quote, chain: PckChain) -> TcbResult:
    """:func:`evaluate_tcb`, memoized: a platform's quotes repeat the same TCB inputs.

    The key holds every quote field the evaluation reads (TEE_TCB_SVN, MRSIGNERSEAM, SEAMATTRIBUTES and the whole
    QE report); the TCB info, QE identity and PCK extensions by identity (memoized objects, identity-checked on a
    hit). Widen the key if the evaluation ever reads another quote field. Failures are not memoized.
    """
    body = quote.body
    key = (
        id(info),
        id(identity),
        id(chain.extensions),
        body.tee_tcb_svn,
        body.mr_signer_seam,
        body.seam_attributes,
        quote.qe_report.raw,
    )
    found = _TCB.get(
        key, lambda: (info, identity, chain.extensions, evaluate_tcb(info, identity, quote, chain.extensions))
    )
    if found[0] is info and found[1] is identity and found[2] is chain.extensions:
        return found[3]
    return evaluate_tcb(info, identity, quote, chain.extensions)


def run(
    raw: bytes,
    ctx: VerifyContext,
    *,
    expected_report_data: bytes | None,
    collateral_override: TdxCollateral | None,
    trust: TdxTrust | None,
) -> TdxResult:
    if not isinstance(raw, bytes | bytearray):
        raise MALFORMED_EVIDENCE("TDX quote must be bytes")
    now = ctx.now
    anchors = trust or intel_trust()
    # Step 1: parse.
    quote = parse_quote(bytes(raw))
    # Step 2: PCK chain to the pinned root.
    skew = timedelta(seconds=max(0, ctx.settings.clock_skew_seconds))
    chain = verify_pck_chain(quote.pck_chain_pem, anchors, now, skew)
    # Step 3: QE report, attestation key and quote signatures.
    verify_quote_signatures(quote, chain)
    # Step 4: nonce binding.
    if expected_report_data is not None:
        require_equal("TDX REPORTDATA", quote.body.report_data, expected_report_data)

    # Step 5: collateral, supplied or fetched (signatures checked before caching).
    crls = not revocation.skipped(ctx.settings)  # revocation = skip: recorded by the broker, capped at warning
    if collateral_override is not None:
        collateral = collateral_override
        records = collateral.records or tuple(
            CollateralRecord(t, None, "evidence") for t in ("tcb_info", "qe_identity", "pck_crl", "root_crl")
        )
    elif (bundled := bundled_collateral(ctx, chain.extensions.fmspc, chain.ca)) is not None:
        collateral = bundled
        records = bundled.records
    else:
        urls = collateral_urls(
            ctx.settings.intel_pcs_url,
            chain.extensions.fmspc,
            chain.ca,
            root_crl_url=ctx.settings.intel_root_crl_url,
        )
        collateral = fetch_collateral(ctx, urls, _checks(anchors, chain, now, skew), crls=crls)
        records = collateral.records
    if not crls:
        # revocation = skip: the CRLs are neither required nor recorded, whatever the source carried.
        records = tuple(r for r in records if r.type not in ("pck_crl", "root_crl"))
    stale = {r.type: r.stale for r in records}
    grace_all = timedelta(seconds=max(0, ctx.settings.collateral_stale_grace_seconds))

    def window(kind: str, what: str, issued: datetime, next_update: datetime) -> None:
        check_window(what, issued, next_update, now, skew=skew, grace=grace_all if stale.get(kind) else timedelta(0))

    signed = _signed_collateral(collateral, chain, anchors, now, skew, crls=crls)
    dates: dict[str, tuple[datetime, datetime]] = {}
    root_crl, pck_crl = signed.root_crl, signed.pck_crl
    if root_crl is not None and pck_crl is not None:
        # Step 6: root CRL first: it vouches for the PCK CA and the TCB Signing certificate.
        window("root_crl", "root CRL", root_crl.this_update, root_crl.next_update)
        require_not_revoked(root_crl, chain.intermediate, "PCK CA")

        # Step 7: PCK CRL.
        window("pck_crl", "PCK CRL", pck_crl.this_update, pck_crl.next_update)
        require_not_revoked(pck_crl, chain.leaf, "PCK")
        dates["pck_crl"] = (pck_crl.this_update, pck_crl.next_update)
        dates["root_crl"] = (root_crl.this_update, root_crl.next_update)

    # Step 8: TCB info and its TCB Signing certificate.
    check_validity(signed.tcb_signing, now, "TCB Signing")
    if root_crl is not None:
        require_not_revoked(root_crl, signed.tcb_signing, "TCB Signing")
    info = signed.info
    if info.id != "TDX" or info.version < 3:
        raise TDX_TCB_INFO_NOT_TDX(f"TCB info id {info.id!r} version {info.version} for a TDX quote")
    window("tcb_info", "TCB info", info.issue_date, info.next_update)
    if info.fmspc != chain.extensions.fmspc or info.pce_id != chain.extensions.pce_id:
        raise TDX_FMSPC_MISMATCH("TCB info FMSPC/PCE ID differ from the PCK certificate")

    # Step 9: QE identity and its TCB Signing certificate.
    check_validity(signed.qe_signing, now, "TCB Signing")
    if root_crl is not None:
        require_not_revoked(root_crl, signed.qe_signing, "TCB Signing")
    identity = signed.identity
    window("qe_identity", "QE identity", identity.issue_date, identity.next_update)

    # Step 10: TCB evaluation.
    tcb = _evaluate_tcb(info, identity, quote, chain)
    # Step 11: appraisal and claims.
    any_stale = any(stale.values())
    verdict = appraisal.appraise(quote, tcb, appraisal.FACTS, now, stale=any_stale)

    dates["tcb_info"] = (info.issue_date, info.next_update)
    dates["qe_identity"] = (identity.issue_date, identity.next_update)
    verifier_claims: dict[str, Any] = {
        "evidence_kind": "tdx",
        "collateral": [
            {
                "type": r.type,
                "url": r.url,
                "issued": iso_utc(dates[r.type][0]),
                "next_update": iso_utc(dates[r.type][1]),
                "source": r.source,
                "stale": r.stale,
            }
            for r in records
        ],
        "bindings": {"nonce": "checked" if expected_report_data is not None else "not-requested"},
        "stale": any_stale,
        "signing_key": "pck",
        "pck_ca": chain.ca,
        "tcb_evaluation_data_number": info.eval_number,
    }
    if verdict.findings:
        verifier_claims["findings"] = list(verdict.findings)
    return TdxResult(
        quote=quote,
        tcb=tcb,
        trustworthiness_vector=verdict.vector,
        attester_claims=attester_claims(quote, tcb),
        verifier_claims=verifier_claims,
        findings=verdict.findings,
    )
