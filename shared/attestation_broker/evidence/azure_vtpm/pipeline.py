"""Verify Azure CVM vTPM evidence by composing the SEV-SNP / TDX verifiers and the TPM core.

Chain of trust (each step raises a typed error):

1. HCL report parsed with its own lengths (:mod:`.hcl`); SHA-256(runtime JSON as stored) ‖ 32 zero bytes
   must be the hardware REPORT_DATA (AZURE_VTPM_RUNTIME_BINDING_MISMATCH). That value is also handed to the
   hardware verifier as its expected REPORT_DATA, so the signed report vouches for the runtime JSON.
2. Hardware report:
   - SEV-SNP: :func:`attestation_broker.evidence.snp.verify_snp_evidence` (VCEK from the evidence/extras or AMD KDS),
     then VMPL must be 0 — the HCL (paravisor) runs at VMPL 0, the guest OS above it; a report from a
     higher VMPL was requested by the guest itself and proves nothing about the runtime JSON.
   - TDX: the TDREPORT is MAC'd, not signed, so the TD quote is required:
     :func:`attestation_broker.evidence.tdx.verify_tdx_evidence`, then its body must equal the TDREPORT's TDINFO
     (MRTD, RTMR0–3, REPORTDATA, attributes, XFAM, MRCONFIGID, MROWNER, MROWNERCONFIG).
3. TPM quote: :func:`attestation_broker.evidence.tpm.verify_quote` with the runtime JSON's ``HCLAkPub`` (now trusted
   through step 1–2); PCR values, when supplied, must hash to pcrDigest (SHA-256 bank).
4. Nonce (when requested), both halves: runtime ``user-data`` == hex(``binding.azure_user_data()``),
   case-insensitive, AND quote extraData == ``binding.tpm_extra_data()``. ``user-data`` proves the nonce
   reached the HCL report; extraData proves the quote (hence the PCRs) is fresh.

Test seam: :func:`verify_evidence` takes keyword-only ``tdx_trust`` / ``tdx_collateral_override``, passed
unchanged to :func:`attestation_broker.evidence.tdx.verify_tdx_evidence` (``trust=`` / ``collateral_override=``),
and ``snp_trust``, passed to :func:`attestation_broker.evidence.snp.verify_snp_evidence` (``trust=``).
Only tests pass them (a generated Intel-like root); :class:`~.verifier.AzureVtpmVerifier` never does, so
neither is reachable from a request or an envelope. ``None`` (the default) is the product behaviour:
pinned Intel roots and collateral fetched from Intel PCS.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from attestation_broker.binding import ExpectedBinding, require_equal
from attestation_broker.errors import NONCE_BINDING_MISMATCH
from attestation_broker.evidence.tee import TeeOutcome
from attestation_broker.evidence.tpm import AkPublic, VerifiedQuote, load_ak_public, verify_quote
from attestation_broker.verifier import VerifyContext

from .envelope import AzureEvidence
from .errors import (
    AZURE_VTPM_EVIDENCE_MALFORMED,
    AZURE_VTPM_TD_QUOTE_MISMATCH,
    AZURE_VTPM_TD_QUOTE_MISSING,
    AZURE_VTPM_VMPL_NOT_ZERO,
)
from .hcl import REPORT_TYPE_SNP, HclReport, check_runtime_binding, parse_hcl_report

if TYPE_CHECKING:
    from attestation_broker.evidence.snp.checks import AmdTrust
    from attestation_broker.evidence.tdx import TdxCollateral, TdxTrust


@dataclass(frozen=True)
class VerifiedAzure:
    evidence: AzureEvidence
    hcl: HclReport
    hardware: TeeOutcome
    ak: AkPublic
    quote: VerifiedQuote
    nonce_checked: bool


def check_user_data(hcl: HclReport, binding: ExpectedBinding) -> None:
    """Runtime JSON ``user-data`` must be the hex of ``binding.azure_user_data()`` (either case)."""
    value = hcl.user_data
    if value is None:
        raise NONCE_BINDING_MISMATCH("HCL runtime data has no user-data")
    try:
        actual = bytes.fromhex(value)
    except ValueError:
        raise NONCE_BINDING_MISMATCH("HCL runtime user-data is not hex") from None
    require_equal("Azure HCL user-data", actual, binding.azure_user_data())


def _compare_td_quote(quote_body: Any, hcl: HclReport) -> None:
    td = hcl.td_report()
    pairs = (
        ("MRTD", quote_body.mr_td, td.mrtd),
        ("REPORTDATA", quote_body.report_data, td.report_data),
        ("TD attributes", quote_body.td_attributes, td.attributes),
        ("XFAM", quote_body.xfam, td.xfam),
        ("MRCONFIGID", quote_body.mr_config_id, td.mrconfigid),
        ("MROWNER", quote_body.mr_owner, td.mrowner),
        ("MROWNERCONFIG", quote_body.mr_owner_config, td.mrownerconfig),
        *((f"RTMR{i}", a, b) for i, (a, b) in enumerate(zip(quote_body.rtmrs, td.rtmrs, strict=True))),
    )
    for name, a, b in pairs:
        if not hmac.compare_digest(bytes(a), bytes(b)):
            raise AZURE_VTPM_TD_QUOTE_MISMATCH(f"TD quote {name} differs from the HCL TDREPORT")


def verify_hardware(
    ev: AzureEvidence,
    hcl: HclReport,
    ctx: VerifyContext,
    *,
    tdx_trust: TdxTrust | None = None,
    tdx_collateral_override: TdxCollateral | None = None,
    snp_trust: AmdTrust | None = None,
) -> TeeOutcome:
    expected = check_runtime_binding(hcl)
    if hcl.report_type == REPORT_TYPE_SNP:
        from attestation_broker.evidence.snp import verify_snp_evidence

        snp = verify_snp_evidence(
            hcl.hw_report,
            list(ev.certs),
            ctx,
            expected_report_data=expected,
            trust=snp_trust,
        )
        if snp.report.vmpl != 0:
            raise AZURE_VTPM_VMPL_NOT_ZERO(f"SEV-SNP report VMPL is {snp.report.vmpl}")
        return TeeOutcome.from_snp(snp)
    if ev.td_quote is None:
        raise AZURE_VTPM_TD_QUOTE_MISSING("TDX HCL report without a TD quote")
    from attestation_broker.evidence.tdx import verify_tdx_evidence

    tdx = verify_tdx_evidence(
        ev.td_quote,
        ctx,
        expected_report_data=expected,
        collateral_override=tdx_collateral_override,
        trust=tdx_trust,
    )
    _compare_td_quote(tdx.quote.body, hcl)
    return TeeOutcome.from_tdx(tdx)


def verify_evidence(
    ev: AzureEvidence,
    ctx: VerifyContext,
    binding: ExpectedBinding | None,
    *,
    tdx_trust: TdxTrust | None = None,
    tdx_collateral_override: TdxCollateral | None = None,
    snp_trust: AmdTrust | None = None,
) -> VerifiedAzure:
    """Verify ``ev`` end to end. ``tdx_trust`` / ``tdx_collateral_override`` are test-only (module doc)."""
    hcl = parse_hcl_report(ev.hcl_report)
    if ev.quote is None:
        raise AZURE_VTPM_EVIDENCE_MALFORMED("no TPM quote supplied (the HCL AK must sign a fresh quote)")
    ak = load_ak_public(dict(hcl.ak_jwk()))
    # Binding first: cheap, and a stale replay is the likeliest failure.
    if binding is not None:
        check_user_data(hcl, binding)
    hardware = verify_hardware(
        ev,
        hcl,
        ctx,
        tdx_trust=tdx_trust,
        tdx_collateral_override=tdx_collateral_override,
        snp_trust=snp_trust,
    )
    pcrs = dict(enumerate(ev.quote.pcrs)) if ev.quote.pcrs is not None else None
    quote = verify_quote(
        ev.quote.message,
        ev.quote.signature,
        ak,
        expected_extra_data=binding.tpm_extra_data() if binding is not None else None,
        pcrs=pcrs,
        pcr_bank="sha256",
    )
    return VerifiedAzure(ev, hcl, hardware, ak, quote, binding is not None)
