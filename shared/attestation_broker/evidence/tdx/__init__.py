"""Intel TDX DCAP quote verification (evidence kind ``tdx``): the stable API composite kinds reuse.

Public API (stable; ``azure-vtpm`` and ``gcp-vtpm`` call it for the TD quote they carry):

* :func:`parse_quote` — parse a quote v4/v5 (TD report 1.0 or 1.5 body) into a frozen :class:`Quote`,
  using the quote's own length fields (trailing padding is ignored).
* :func:`verify_tdx_evidence` — the full DCAP verification, TCB evaluation, nonce binding, policy
  appraisal and claim normalization of one quote; returns a frozen :class:`TdxResult` or raises a
  :class:`~attestation_broker.errors.BrokerError` with a stable code.
* :class:`TdxCollateral` — Intel collateral supplied by the caller instead of being fetched
  (e.g. :meth:`TdxCollateral.from_dcap_qvl_json`), still verified exactly like fetched collateral.
* :class:`TdxTrust` — trust anchors; the default is the pinned Intel SGX Root CA. Tests inject a
  generated root through ``trust=``; production code never passes it.
"""

from __future__ import annotations

from attestation_broker.evidence.tdx.abi import Quote, TdReportBody, parse_quote
from attestation_broker.evidence.tdx.collateral import TdxCollateral
from attestation_broker.evidence.tdx.result import TcbResult, TdxResult
from attestation_broker.evidence.tdx.trust import TdxTrust
from attestation_broker.verifier import VerifyContext

__all__ = [
    "Quote",
    "TcbResult",
    "TdReportBody",
    "TdxCollateral",
    "TdxResult",
    "TdxTrust",
    "parse_quote",
    "verify_tdx_evidence",
]


def verify_tdx_evidence(
    quote: bytes,
    ctx: VerifyContext,
    *,
    expected_report_data: bytes | None,
    collateral_override: TdxCollateral | None = None,
    trust: TdxTrust | None = None,
) -> TdxResult:
    """Verify one TDX quote end to end and appraise it.

    - ``quote``: the raw quote (v4 or v5; trailing bytes after the signature data are ignored).
    - ``ctx``: injected ``now``, collateral cache and settings (``intel_pcs_url``,
      ``collateral_stale_grace_seconds``). No policy is read: the Broker's policy engine appraises the result.
    - ``expected_report_data``: the exact 64-byte REPORTDATA the quote must carry (e.g.
      ``ExpectedBinding.report_data()`` or, for Azure, SHA-256(runtime JSON) ‖ 32 zero bytes);
      ``None`` skips the binding and the verifier claims record ``"bindings": {"nonce": "not-requested"}``.
    - ``collateral_override``: collateral to use instead of fetching from Intel PCS.
    - ``trust``: test-only trust anchors (default: the pinned Intel roots).

    Raises MALFORMED (400) codes for unusable quotes, VerificationFailed codes for any failed
    signature/chain/collateral/binding check, COLLATERAL_UNAVAILABLE (503) on outages.
    """
    from attestation_broker.evidence.tdx.pipeline import run

    return run(
        quote,
        ctx,
        expected_report_data=expected_report_data,
        collateral_override=collateral_override,
        trust=trust,
    )
