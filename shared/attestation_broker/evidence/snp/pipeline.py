"""The SEV-SNP verification pipeline shared by the ``snp`` kind and the composite kinds.

Chain of trust, in the order :func:`verify_snp_evidence` checks it (fail closed; each step raises a typed error;
the matching ``# Step N`` comment marks its code):

1. Parse: the ATTESTATION_REPORT and any extended-report certificate table (:mod:`.abi`); supplied certificates
   and CRLs classified by role (:mod:`.certs`); the product line from CPUID, the ``product`` field or the leaf.
2. Signing key: SIGNING_KEY must name a VCEK or VLEK (MASK_CHIP_KEY refused); the matching supplied endorsement
   key is chosen, else the VCEK is fetched from AMD KDS (a VLEK is never fetched).
3. Chain: endorsement key → ASK/ASVK → the pinned ARK of that product line (:func:`.checks.verify_chain`), leaf
   product and validity at ``now`` within the configured clock skew.
4. Report signature: ECDSA P-384 over the report body with the endorsement key.
5. Certificate ↔ report: REPORTED_TCB against the certificate's TCB extensions; for a VCEK, CHIP_ID against the
   certificate's hwID.
6. Revocation (unless ``revocation = skip``): an ARK-signed, fresh AMD CRL (supplied or from KDS) must not list the
   intermediate.
7. Binding: REPORT_DATA equals the expected value when a nonce was requested.
8. Appraisal and claims: policy facts graded into the AR4SI vector (:mod:`.appraise`), normalized claims
   (:mod:`.claims`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker import revocation
from attestation_broker.binding import require_equal
from attestation_broker.errors import BrokerError
from attestation_broker.evidence.snp import kds
from attestation_broker.evidence.snp.abi import (
    SIGNING_KEY_VCEK,
    SIGNING_KEY_VLEK,
    AttestationReport,
    TcbVersion,
    require_product,
    split_evidence,
)
from attestation_broker.evidence.snp.appraise import FACTS, appraise
from attestation_broker.evidence.snp.certs import LeafInfo, Supplied, SuppliedCert, classify, load_certificate
from attestation_broker.evidence.snp.checks import (
    AmdTrust,
    ProductRoots,
    VerifiedChain,
    VerifiedCrl,
    check_chip_id,
    check_crl_fresh,
    check_leaf_product,
    check_not_revoked,
    check_tcb,
    check_validity,
    pinned_trust,
    verify_chain,
    verify_crl,
    verify_report_signature,
)
from attestation_broker.evidence.snp.claims import attester_claims
from attestation_broker.evidence.snp.errors import (
    SNP_CERTIFICATE_MISSING,
    SNP_PRODUCT_MISMATCH,
    SNP_PRODUCT_UNKNOWN,
    SNP_SIGNING_KEY_MISMATCH,
    SNP_SIGNING_KEY_UNSUPPORTED,
)
from attestation_broker.verifier import VerifyContext


@dataclass(frozen=True)
class SnpResult:
    """A verified and appraised SEV-SNP report.

    ``trustworthiness_vector`` holds the AR4SI claims this report supports (hardware, instance-identity,
    configuration, executables, runtime-opaque); composite kinds may merge or override entries.
    ``attester_claims`` is the normalized claim dict (tee, platform, measurement, dbgstat, tcb,
    report_data, snp{...}); ``verifier_claims`` carries evidence_kind, product, signing_key, collateral
    and bindings.
    """

    report: AttestationReport
    product: str
    signing_key: str  # "vcek" | "vlek"
    tcb: TcbVersion
    trustworthiness_vector: Mapping[str, int]
    attester_claims: Mapping[str, Any]
    verifier_claims: Mapping[str, Any]
    findings: tuple[str, ...] = field(default=())

    @property
    def status(self) -> ar4si.EarStatus:
        return ar4si.status_of(self.trustworthiness_vector)

    def appraisal(self, kind: str = "snp") -> ar4si.Appraisal:
        return ar4si.Appraisal(
            kind=kind,
            trustworthiness_vector=self.trustworthiness_vector,
            attester_claims=self.attester_claims,
            verifier_claims=self.verifier_claims,
            findings=self.findings,
        )


def _iso(value: Any) -> str | None:
    return _iso_utc(value) if value is not None else None


@lru_cache(maxsize=256)
def _iso_utc(value: datetime) -> str:
    # Memoized: the same CRL dates recur in every report of a product line.
    return value.isoformat().replace("+00:00", "Z")


def _product(report: AttestationReport, supplied: Supplied, hint: str | None) -> str:
    if report.cpuid_fam_id is not None:
        product = require_product(report)
        if hint is not None and hint != product:
            raise SNP_PRODUCT_MISMATCH(f"product field says {hint}, report CPUID says {product}")
        return product
    if hint is not None:
        return hint
    # v2 reports carry no CPUID: take the product line the supplied endorsement key names.
    for _item, info in supplied.leaves:
        if info.product is not None:
            return info.product
    raise SNP_PRODUCT_UNKNOWN("v2 report without CPUID and no certificate or 'product' field naming the product")


def _choose_leaf(
    report: AttestationReport, kind: str, product: str, supplied: Supplied
) -> tuple[SuppliedCert, LeafInfo] | None:
    matching = [(item, info) for item, info in supplied.leaves if info.kind == kind]
    if not matching:
        if supplied.leaves:
            raise SNP_SIGNING_KEY_MISMATCH(
                f"report SIGNING_KEY is {kind.upper()} but only "
                f"{', '.join(sorted({i.kind.upper() for _c, i in supplied.leaves}))} supplied"
            )
        return None
    if kind == "vcek":
        hwid = report.chip_id[:8] if product == "Turin" else report.chip_id
        for item, info in matching:
            if info.hwid == hwid:
                return item, info
    return matching[0]


def _crl(
    ctx: VerifyContext, supplied: Supplied, roots: ProductRoots, kind: str, skew: timedelta
) -> tuple[VerifiedCrl, dict[str, Any]]:
    """A fresh ARK-signed CRL: one supplied with the evidence if it verifies and is fresh, else KDS's."""
    for der in supplied.crls:
        try:
            crl = verify_crl(der, roots)
            check_crl_fresh(crl, ctx.now, skew)
        except BrokerError:  # an unusable supplied CRL is ignored; KDS is authoritative
            continue
        return crl, {"type": "crl", "url": None, "source": "evidence", "stale": False}
    url = kds.crl_url(ctx.settings.amd_kds_url, roots.product, kind)
    crl, obj = kds.fetch_crl(ctx, url, roots)
    grace = timedelta(seconds=ctx.settings.collateral_stale_grace_seconds) if obj.stale else timedelta(0)
    check_crl_fresh(crl, ctx.now, skew, grace)
    return crl, {"type": "crl", "url": url, "source": obj.source, "stale": obj.stale}


def verify_snp_evidence(
    report: bytes,
    certificates: Sequence[bytes],
    ctx: VerifyContext,
    *,
    expected_report_data: bytes | None,
    product: str | None = None,
    trust: AmdTrust | None = None,
) -> SnpResult:
    """Verify, appraise and normalize one SEV-SNP ATTESTATION_REPORT.

    ``report``: the report (v2–v5); zero padding or an extended-report certificate table may follow it.
    ``certificates``: PEM/DER certificates (VCEK/VLEK, ASK/ASVK; an ARK is never trusted from here),
    AMD CRLs (PEM/DER) and certificate-table blobs, in any order; may be empty, in which case the VCEK is
    fetched from AMD KDS through ``ctx.collateral``.
    ``expected_report_data``: the exact 64 bytes REPORT_DATA must equal (e.g.
    ``binding.report_data()``), or None when no binding was requested.
    ``product``: product line hint (Milan/Genoa/Turin) for v2 reports that carry no CPUID.
    ``trust``: pinned roots override for tests; defaults to the package's pinned AMD roots.

    Raises a :class:`~attestation_broker.errors.BrokerError` on any verification failure; policy outcomes are
    graded as facts into the trustworthiness vector; the operator's policy is applied by the Broker.
    """
    # Step 1: parse the report, classify what was supplied, settle the product line.
    parsed, table = split_evidence(report)
    supplied = classify(certificates, table)
    product_line = _product(parsed, supplied, product)
    trust = trust if trust is not None else pinned_trust()
    roots = trust.roots(product_line)
    skew = timedelta(seconds=ctx.settings.clock_skew_seconds)

    # Step 2: the signing key the report names, supplied or fetched from KDS.
    if parsed.mask_chip_key or parsed.signing_key not in (SIGNING_KEY_VCEK, SIGNING_KEY_VLEK):
        raise SNP_SIGNING_KEY_UNSUPPORTED(
            f"SIGNING_KEY {parsed.signing_key_name}, MASK_CHIP_KEY {parsed.mask_chip_key}"
        )
    kind = "vcek" if parsed.signing_key == SIGNING_KEY_VCEK else "vlek"
    tcb = TcbVersion.decode(parsed.reported_tcb_raw, product_line)

    collateral: list[dict[str, Any]] = []
    chosen = _choose_leaf(parsed, kind, product_line, supplied)
    if chosen is None:
        if kind == "vlek":
            raise SNP_CERTIFICATE_MISSING()
        url = kds.vcek_url(ctx.settings.amd_kds_url, product_line, parsed.chip_id, tcb)
        fetched = kds.fetch_vcek(ctx, url)
        leaf = SuppliedCert(fetched.body, load_certificate(fetched.body))
        source: dict[str, Any] = {"url": url, "source": fetched.source, "stale": fetched.stale}
    else:
        leaf = chosen[0]
        source = {"url": None, "source": "evidence", "stale": False}

    # Step 3: endorsement key -> ASK/ASVK -> pinned ARK, validity within the clock skew.
    chain: VerifiedChain = verify_chain(leaf, kind, roots, supplied.intermediates)
    check_leaf_product(chain, product_line)
    check_validity(chain, ctx.now, skew)
    # Step 4: the report signature.
    verify_report_signature(parsed, chain.public_key)
    # Step 5: the certificate vouches for this chip and TCB.
    check_tcb(chain.info, tcb)
    if kind == "vcek":
        check_chip_id(chain.info, parsed, product_line)
    collateral.append(
        {
            "type": kind,
            **source,
            "issued": chain.leaf_issued,
            "next_update": None,
            "sha256": chain.leaf_sha256,
        }
    )

    # Step 6: revocation of the intermediate.
    if not revocation.skipped(ctx.settings):  # revocation = skip: recorded by the broker, capped at warning
        crl, crl_entry = _crl(ctx, supplied, roots, kind, skew)
        check_not_revoked(crl, chain.intermediate)
        crl_entry.update({"issued": _iso(crl.last_update), "next_update": _iso(crl.next_update)})
        collateral.append(crl_entry)

    # Step 7: nonce binding.
    if expected_report_data is not None:
        require_equal("SEV-SNP REPORT_DATA", parsed.report_data, expected_report_data)

    # Step 8: appraisal and normalized claims.
    grade = appraise(parsed, tcb, product_line, kind, FACTS)
    claims = attester_claims(parsed, tcb, grade.tcb_status, product_line, chain.info)
    verifier_claims: dict[str, Any] = {
        "evidence_kind": "snp",
        "product": product_line,
        "signing_key": kind,
        "collateral": collateral,
        "bindings": {"nonce": "checked" if expected_report_data is not None else "not-requested"},
        "intermediate": {"subject": chain.intermediate_subject, "pinned": chain.intermediate_pinned},
    }
    if grade.findings:
        verifier_claims["findings"] = list(grade.findings)
    return SnpResult(
        report=parsed,
        product=product_line,
        signing_key=kind,
        tcb=tcb,
        trustworthiness_vector=grade.vector,
        attester_claims=claims,
        verifier_claims=verifier_claims,
        findings=grade.findings,
    )
