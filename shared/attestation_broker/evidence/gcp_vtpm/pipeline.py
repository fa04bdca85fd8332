"""Verify a go-tpm-tools ``Attestation`` by composing the TPM core and the SEV-SNP / TDX verifiers.

Order (fail closed, each step raises a typed error):

1. AK: ``ak_pub`` (TPMT_PUBLIC) loaded by the TPM core; the AK certificate (field 6, or an extra whose key
   is the AK) must chain to a pinned Google EK/AK root at ``now`` and certify exactly that key
   (:mod:`.akcert`). ``instance_info`` (field 4), when present, must equal the certified identity.
2. Quotes: every quote verified by :func:`attestation_broker.evidence.tpm.verify_quote` with the AK, its PCR values and
   bank; one quote per bank, all with the same extraData. Nonce binding (when requested):
   extraData == ``binding.tpm_extra_data()`` = SHA-256(nonce ‖ user_data).
3. Event log (field 3), when present: replayed by :func:`attestation_broker.evidence.tpm.verify_event_log` against the
   quoted PCRs of one bank (SHA-256 preferred). PCRs the firmware log cannot reproduce are ignored:
   policy ``ignore_pcrs`` (default [10], IMA) plus 13 when a Canonical Event Log is attached (CEL replay
   is not implemented: reported as a finding).
4. TEE (field 8 or 9), when present: re-encoded in hardware format (:mod:`.abi`) and verified by
   :func:`attestation_broker.evidence.snp.verify_snp_evidence` /
   :func:`attestation_broker.evidence.tdx.verify_tdx_evidence`.

   TEE ↔ vTPM binding rule enforced here: go-tpm-tools itself does not bind the TEE report to the AK —
   its client puts the caller's TEE nonce (``AttestOpts.TEENonce``, default: the quote nonce zero-padded)
   in REPORT_DATA and its server compares REPORT_DATA with the value the caller expects. The broker
   expects REPORT_DATA == ``binding.report_data()`` = SHA-512(nonce ‖ user_data) while the quotes carry
   SHA-256(nonce ‖ user_data): both halves prove knowledge of the same fresh broker nonce, which is the
   only link the format offers. Without a requested nonce the TEE report is verified but unbound, and the
   verifier claims say so (``bindings.tee_report = "unbound"``). When the measured event log declares
   the GCE confidential technology (EV_NONHOST_INFO in PCR0), it must name the same TEE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cryptography import x509

from attestation_broker.binding import ExpectedBinding
from attestation_broker.errors import MALFORMED_EVIDENCE
from attestation_broker.evidence.tee import TeeOutcome
from attestation_broker.evidence.tpm import (
    AkPublic,
    VerifiedEventLog,
    VerifiedQuote,
    load_ak_public,
    verify_event_log,
    verify_quote,
)
from attestation_broker.trust.x509 import parse_der_certificate, parse_pem_certificates
from attestation_broker.verifier import VerifyContext

from .abi import GcpAttestation, GcpQuote

if TYPE_CHECKING:
    from attestation_broker.evidence.snp.checks import AmdTrust
    from attestation_broker.evidence.tdx import TdxTrust
from .akcert import VerifiedAkCert, load_cert, public_key_der, verify_ak_cert
from .errors import (
    GCP_VTPM_AK_CERT_MISSING,
    GCP_VTPM_AK_MISMATCH,
    GCP_VTPM_INSTANCE_INFO_MISMATCH,
    GCP_VTPM_NO_QUOTES,
    GCP_VTPM_QUOTES_INCONSISTENT,
    GCP_VTPM_TEE_INCONSISTENT,
)

BANK_PREFERENCE = ("sha256", "sha384", "sha512", "sha1")
CEL_PCRS = (13,)


@dataclass(frozen=True)
class TrustOverride:
    """Test-only trust anchors (generated Google-like AK CA, AMD-like and Intel-like roots). Only tests build
    one (through :class:`~.kind.GcpVtpmVerifier`); the registry never does, so no request can reach it.
    None everywhere = the pinned vendor roots."""

    ak_roots: tuple[tuple[str, x509.Certificate], ...] | None = None
    snp: AmdTrust | None = None
    tdx: TdxTrust | None = None


@dataclass(frozen=True)
class VerifiedGcp:
    attestation: GcpAttestation
    ak: AkPublic
    ak_cert: VerifiedAkCert
    quotes: tuple[VerifiedQuote, ...]
    event_log: VerifiedEventLog | None
    tee: TeeOutcome | None
    nonce_checked: bool
    findings: tuple[str, ...]

    def quote(self, bank: str) -> VerifiedQuote | None:
        return next((q for q in self.quotes if q.bank == bank), None)

    @property
    def primary(self) -> VerifiedQuote:
        """The quote of the preferred bank (SHA-256 first)."""
        for bank in BANK_PREFERENCE:
            found = self.quote(bank)
            if found is not None:
                return found
        return self.quotes[0]  # pragma: no cover - banks are limited to BANK_PREFERENCE


def _extra_certs(extras: Sequence[bytes]) -> list[x509.Certificate]:
    out = []
    for blob in extras:
        if b"-----BEGIN CERTIFICATE" in blob:
            try:
                out.extend(parse_pem_certificates(blob))
            except ValueError:
                raise MALFORMED_EVIDENCE("an extra PEM file does not parse") from None
        elif blob[:1] == b"\x30":
            try:
                out.append(parse_der_certificate(blob))
            except ValueError:
                continue  # DER that is not a certificate (e.g. a CRL) is for the TEE verifier
    return out


def _ak_certificate(att: GcpAttestation, ak: AkPublic, extra: list[x509.Certificate]) -> x509.Certificate:
    if att.ak_cert:
        cert = load_cert(att.ak_cert)
    else:
        cert = next((c for c in extra if public_key_der(c) == ak.spki_der), None)  # type: ignore[assignment]
        if cert is None:
            raise GCP_VTPM_AK_CERT_MISSING("no AK certificate in the attestation or the extras")
    if public_key_der(cert) != ak.spki_der:
        raise GCP_VTPM_AK_MISMATCH("AK certificate key differs from ak_pub")
    return cert


def _check_instance_info(att: GcpAttestation, cert: VerifiedAkCert) -> None:
    info, ident = att.instance_info, cert.identity
    if info is None:
        return
    if ident is None:
        raise GCP_VTPM_INSTANCE_INFO_MISMATCH("instance_info present but the AK certificate certifies no identity")
    claimed = (info.zone, info.project_id, info.project_number, info.instance_name, info.instance_id)
    certified = (ident.zone, ident.project_id, ident.project_number, ident.instance_name, ident.instance_id)
    if claimed != certified:
        raise GCP_VTPM_INSTANCE_INFO_MISMATCH("instance_info differs from the AK certificate identity")


def _fetcher(ctx: VerifyContext) -> Any:
    def fetch(url: str) -> tuple[bytes, dict[str, object]]:
        def validate(body: bytes) -> None:
            load_cert(body)

        obj = ctx.collateral.get(url, now=ctx.now, expires=lambda _b: None, validate=validate)
        record: dict[str, object] = {
            "type": "google_ak_intermediate",
            "url": url,
            "source": obj.source,
            "stale": obj.stale,
        }
        return obj.body, record

    return fetch


def verify_quotes(
    quotes: Sequence[GcpQuote], ak: AkPublic, binding: ExpectedBinding | None
) -> tuple[VerifiedQuote, ...]:
    if not quotes:
        raise GCP_VTPM_NO_QUOTES("attestation has no quotes")
    expected = binding.tpm_extra_data() if binding is not None else None
    verified: list[VerifiedQuote] = []
    for q in quotes:
        if any(v.bank == q.bank for v in verified):
            raise GCP_VTPM_QUOTES_INCONSISTENT(f"bank {q.bank} quoted twice")
        vq = verify_quote(q.attest, q.signature, ak, expected_extra_data=expected, pcrs=q.pcrs, pcr_bank=q.bank)
        if verified and vq.extra_data != verified[0].extra_data:
            raise GCP_VTPM_QUOTES_INCONSISTENT("quotes carry different extraData")
        verified.append(vq)
    return tuple(verified)


def verify_attestation(
    att: GcpAttestation,
    extras: Sequence[bytes],
    ctx: VerifyContext,
    binding: ExpectedBinding | None,
    *,
    ignore_pcrs: Sequence[int],
    trust: TrustOverride | None = None,
) -> VerifiedGcp:
    """``trust`` is test-only (generated Google-like / AMD-like / Intel-like roots, see :class:`TrustOverride`)."""
    findings: list[str] = []
    ak = load_ak_public(att.ak_pub)
    extra_certs = _extra_certs(extras)
    cert = _ak_certificate(att, ak, extra_certs)
    intermediates = [load_cert(c) for c in att.intermediate_certs] + [c for c in extra_certs if c != cert]
    ak_cert = verify_ak_cert(
        cert,
        intermediates,
        now=ctx.now,
        skew=timedelta(seconds=ctx.settings.clock_skew_seconds),
        fetch_issuer=_fetcher(ctx),
        roots=trust.ak_roots if trust else None,
    )
    _check_instance_info(att, ak_cert)

    quotes = verify_quotes(att.quotes, ak, binding)

    event_log = None
    if att.event_log:
        ignored = set(ignore_pcrs)
        if att.canonical_event_log:
            ignored.update(CEL_PCRS)
            findings.append("canonical event log present but not replayed; PCR 13 not checked")
        primary = next(q for b in BANK_PREFERENCE for q in quotes if q.bank == b)
        assert primary.pcrs is not None  # verify_quotes always passes PCR values
        event_log = verify_event_log(att.event_log, primary.pcrs, primary.bank, ignore_pcrs=sorted(ignored))

    tee = _verify_tee(att, extras, ctx, binding, trust)
    if tee is not None and event_log is not None and event_log.gce_technology not in (None, tee.tee):
        raise GCP_VTPM_TEE_INCONSISTENT(f"event log declares {event_log.gce_technology}, report is {tee.tee}")
    if tee is not None and binding is None:
        findings.append("TEE report not bound to a broker nonce (no nonce requested)")
    return VerifiedGcp(att, ak, ak_cert, quotes, event_log, tee, binding is not None, tuple(findings))


def _verify_tee(
    att: GcpAttestation,
    extras: Sequence[bytes],
    ctx: VerifyContext,
    binding: ExpectedBinding | None,
    trust: TrustOverride | None = None,
) -> TeeOutcome | None:
    expected = binding.report_data() if binding is not None else None
    if att.snp is not None:
        from attestation_broker.evidence.snp import verify_snp_evidence

        certs = [*att.snp.certs, *(e for e in extras if e[:1] == b"\x30" or b"-----BEGIN" in e)]
        product = {1: "Milan", 2: "Genoa", 3: "Turin"}.get(att.snp.product)
        snp = verify_snp_evidence(
            att.snp.report,
            certs,
            ctx,
            expected_report_data=expected,
            product=product,
            trust=trust.snp if trust is not None else None,
        )
        return TeeOutcome.from_snp(snp)
    if att.tdx_quote is not None:
        from attestation_broker.evidence.tdx import verify_tdx_evidence

        tdx = verify_tdx_evidence(
            att.tdx_quote,
            ctx,
            expected_report_data=expected,
            trust=trust.tdx if trust is not None else None,
        )
        return TeeOutcome.from_tdx(tdx)
    return None
