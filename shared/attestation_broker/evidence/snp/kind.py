"""The ``snp`` evidence kind: a raw SEV-SNP ATTESTATION_REPORT (optionally followed by an extended-report
certificate table), with certificates/CRLs as extra files or JSON envelope fields.

Envelope fields (all optional; certificates as PEM text or base64 DER):
``vcek``, ``vlek``, ``ask``, ``asvk``, ``ark``, ``cert_chain``, ``crl`` (strings), ``certificates``
(list of strings), ``cert_table`` (base64 certificate table), ``product`` ("Milan" | "Genoa" | "Turin",
needed only for v2 reports that come without a certificate).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.evidence.snp.abi import PRODUCTS
from attestation_broker.evidence.snp.certs import recognizable
from attestation_broker.evidence.snp.checks import AmdTrust
from attestation_broker.evidence.snp.pipeline import verify_snp_evidence
from attestation_broker.verifier import Submission, VerifyContext

_CERT_FIELDS = ("vcek", "vlek", "ask", "asvk", "ark", "cert_chain", "crl", "cert_table")
_FIELDS = frozenset({*_CERT_FIELDS, "certificates", "product"})


def _decode(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise MALFORMED_EVIDENCE(f"field {name} must be a non-empty string")
    if "-----BEGIN" in value:
        return value.encode("ascii", errors="strict") if value.isascii() else b""
    compact = "".join(value.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise MALFORMED_EVIDENCE(f"field {name} is neither PEM nor base64") from None


class SnpVerifier:
    """``trust`` is a test seam (like :func:`verify_snp_evidence`'s): tests build a verifier with a generated
    AMD-like root; :func:`attestation_broker.registry.default_verifiers` never passes it, so no request or
    configuration can reach it. None = the pinned AMD roots."""

    kind = "snp"

    def __init__(self, *, trust: AmdTrust | None = None) -> None:
        self._trust = trust

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        fields = submission.fields
        unknown = set(fields) - _FIELDS
        if unknown:
            raise MALFORMED_EVIDENCE(f"unknown snp envelope fields {sorted(unknown)}")
        blobs: list[bytes] = [extra for extra in submission.extras if recognizable(extra)]
        for name in _CERT_FIELDS:
            if name in fields:
                blobs.append(_decode(name, fields[name]))
        if "certificates" in fields:
            items = fields["certificates"]
            if not isinstance(items, list):
                raise MALFORMED_EVIDENCE("field certificates must be a list")
            blobs.extend(_decode("certificates", item) for item in items)
        product = fields.get("product")
        if product is not None and product not in PRODUCTS:
            raise MALFORMED_EVIDENCE(f"field product must be one of {', '.join(PRODUCTS)}")
        result = verify_snp_evidence(
            submission.evidence,
            blobs,
            ctx,
            expected_report_data=submission.binding.report_data() if submission.binding is not None else None,
            product=product,
            trust=self._trust,
        )
        return result.appraisal("snp")
