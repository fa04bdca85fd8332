"""The ``snp`` evidence kind: a raw SEV-SNP ATTESTATION_REPORT (optionally followed by an extended-report
certificate table), with certificates/CRLs as extra files or JSON envelope fields.

Envelope fields (all optional; certificates as PEM text or base64 DER):
``vcek``, ``vlek``, ``ask``, ``asvk``, ``ark``, ``cert_chain``, ``crl`` (strings), ``certificates``
(list of strings), ``cert_table`` (base64 certificate table), ``product`` ("Milan" | "Genoa" | "Turin",
needed only for v2 reports that come without a certificate).
"""

from __future__ import annotations

from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.evidence.snp.abi import PRODUCTS, looks_like_cert_table
from attestation_broker.evidence.snp.certs import is_certificate, is_crl
from attestation_broker.evidence.snp.checks import AmdTrust
from attestation_broker.evidence.snp.pipeline import verify_snp_evidence
from attestation_broker.inputs import InputSpec, Role, decode_base64
from attestation_broker.verifier import Submission, VerifyContext

_CERT_FIELDS = ("vcek", "vlek", "ask", "asvk", "ark", "cert_chain", "crl", "cert_table")
INPUTS = InputSpec(
    "snp",
    fields={name: name for name in (*_CERT_FIELDS, "certificates", "product")},
    roles=(
        Role("certificates", is_certificate, many=True),
        Role("crl", is_crl),
        Role("cert_table", looks_like_cert_table),
    ),
)


def _decode(name: str, value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise MALFORMED_EVIDENCE(f"field {name} must be a non-empty string")
    if "-----BEGIN" in value:
        return value.encode("ascii", errors="strict") if value.isascii() else b""
    return decode_base64(value, f"field {name} (neither PEM nor base64)", MALFORMED_EVIDENCE)


class SnpVerifier:
    """``trust`` is a test seam (like :func:`verify_snp_evidence`'s): tests build a verifier with a generated
    AMD-like root; :func:`attestation_broker.registry.default_verifiers` never passes it, so no request or
    configuration can reach it. None = the pinned AMD roots."""

    kind = "snp"
    inputs = INPUTS

    def __init__(self, *, trust: AmdTrust | None = None) -> None:
        self._trust = trust

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        fields = INPUTS.collect(submission.evidence, submission.extras, submission.fields).fields
        blobs: list[bytes] = list(submission.extras)
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
