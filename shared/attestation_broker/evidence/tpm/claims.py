"""Normalize a verified TPM quote into the ``tpm`` namespace of the claim schema (snake_case, lowercase hex)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .checks import VerifiedQuote


def quote_claims(quote: VerifiedQuote, *, pcrs: bool = True) -> dict[str, Any]:
    """Raw ``tpm.*`` fields of a verified quote. ``pcrs`` appears only when PCR values were verified (and ``pcrs``
    is true: composites that list every quoted bank build that field themselves)."""
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
    name = quote.ak.name  # computed (hashed) on access: read once
    if name is not None:
        out["ak_name"] = name.hex()
    if pcrs and quote.pcrs is not None:
        out["pcrs"] = {quote.bank: pcr_values_hex(quote.pcrs)}
    return out


def pcr_values_hex(values: Mapping[int, bytes]) -> dict[str, str]:
    """``{"0": hex, "1": hex, ...}`` in ascending PCR order."""
    return {str(i): values[i].hex() for i in sorted(values)}
