"""Normalize a verified ``gcp-vtpm`` attestation into the broker claim schema.

- ``tee``: ``sev-snp`` / ``tdx`` when a TEE report verified (the hardware that protects the VM's
  memory), else ``vtpm``. ``platform``: ``gcp``.
- ``measurement``: the TEE's (SNP MEASUREMENT / TDX MRTD) when present; otherwise the SHA-256-bank
  quote's pcrDigest (hex of SHA-256 over the quoted PCRs), per the schema's vTPM rule. ``dbgstat``,
  ``tcb`` and ``report_data`` come from the TEE verifier only.
- ``instance``: from the AK certificate's GCE identity extension (Google-certified), never from the
  unsigned ``instance_info`` field.
- ``tpm``: the TPM core's quote claims of the primary bank, every quoted bank's PCR values, event-log
  facts; ``gcp``: AK certificate facts; ``snp``/``tdx``: the TEE verifier's raw fields.
"""

from __future__ import annotations

import warnings
from typing import Any

from cryptography import x509

from attestation_broker.evidence.common import LruMemo
from attestation_broker.evidence.tpm import event_log_claims, quote_claims
from attestation_broker.evidence.tpm.claims import pcr_values_hex
from attestation_broker.trust.chain import Same

from .pipeline import VerifiedGcp

# RFC 4514 subject strings of AK certificate issuers, by certificate identity (trust.chain.Same): rendering a name is
# pure and cost as much as the rest of the claims.
_ISSUER_NAMES = LruMemo(256)


def _subject(cert: x509.Certificate) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Google's 2018 CA names exceed X.520 bounds
        return cert.subject.rfc4514_string()


def attester_claims(v: VerifiedGcp) -> dict[str, Any]:
    primary = v.primary
    tpm = quote_claims(primary, pcrs=False)
    tpm["pcrs"] = {q.bank: pcr_values_hex(q.pcrs or {}) for q in v.quotes}
    tpm["quoted_banks"] = [q.bank for q in v.quotes]
    if v.event_log is not None:
        tpm.update(event_log_claims(v.event_log))
    cert = v.ak_cert
    issuer = _ISSUER_NAMES.get(Same(cert.chain[1]), lambda: _subject(cert.chain[1])) if len(cert.chain) > 1 else ""
    gcp: dict[str, Any] = {
        "ak_cert_issuer": issuer,
        "ak_cert_serial": format(cert.cert.serial_number, "x"),
        "ak_root": cert.root,
        "canonical_event_log": bool(v.attestation.canonical_event_log),
    }
    ident = cert.identity
    out: dict[str, Any] = {"tee": "vtpm", "platform": "gcp", "measurement": primary.pcr_digest.hex()}
    if ident is not None:
        out["instance"] = {
            "id": str(ident.instance_id),
            "name": ident.instance_name,
            "project": ident.project_id,
            "project_number": str(ident.project_number),
            "zone": ident.zone,
        }
        if ident.security is not None:
            gcp["security_version"] = ident.security.security_version
            gcp["is_production"] = ident.security.is_production
    if v.tee is not None:
        tee_claims = v.tee.attester_claims
        out["tee"] = v.tee.tee
        for key in ("measurement", "dbgstat", "tcb", "report_data"):
            if key in tee_claims:
                out[key] = tee_claims[key]
        ns = "snp" if v.tee.tee == "sev-snp" else "tdx"
        if ns in tee_claims:
            out[ns] = tee_claims[ns]
    out["tpm"] = tpm
    out["gcp"] = gcp
    return out


def verifier_claims(v: VerifiedGcp) -> dict[str, Any]:
    collateral: list[Any] = list(v.ak_cert.fetched)
    bindings: dict[str, Any] = {"nonce": "checked" if v.nonce_checked else "not-requested"}
    claims: dict[str, Any] = {"evidence_kind": "gcp-vtpm", "ak_root": v.ak_cert.root}
    if v.tee is not None:
        collateral.extend(v.tee.verifier_claims.get("collateral", []))
        bindings["tee_report"] = "checked" if v.nonce_checked else "unbound"
        for key in ("product", "signing_key"):
            if key in v.tee.verifier_claims:
                claims[key] = v.tee.verifier_claims[key]
    claims["collateral"] = collateral
    claims["bindings"] = bindings
    return claims
