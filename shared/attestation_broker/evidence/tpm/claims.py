"""Normalize a verified TPM quote into the ``tpm`` namespace of the claim schema (snake_case, lowercase hex)."""

from __future__ import annotations

from typing import Any

from .checks import VerifiedQuote


def quote_claims(quote: VerifiedQuote) -> dict[str, Any]:
    """Raw ``tpm.*`` fields of a verified quote. ``pcrs`` appears only when PCR values were verified."""
    attest = quote.attest
    out: dict[str, Any] = {
        "pcr_bank": quote.bank,
        "pcr_selection": list(quote.selected),
        "pcr_digest": quote.pcr_digest.hex(),
        "extra_data": attest.extra_data.hex(),
        "clock": attest.clock_info.clock,
        "reset_count": attest.clock_info.reset_count,
        "restart_count": attest.clock_info.restart_count,
        "clock_safe": attest.clock_info.safe,
        "firmware_version": f"{attest.firmware_version:016x}",
        "qualified_signer": attest.qualified_signer.hex(),
        "signature_scheme": quote.signature_scheme,
        "ak_spki_sha256": quote.ak.spki_sha256,
        "ak_key_type": quote.ak.key_type,
    }
    if quote.ak.name is not None:
        out["ak_name"] = quote.ak.name.hex()
    if quote.pcrs is not None:
        out["pcrs"] = {quote.bank: {str(i): v.hex() for i, v in sorted(quote.pcrs.items())}}
    return out
