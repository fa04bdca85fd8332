"""``revocation = skip``: verifying recorded evidence without CRLs or OCSP (docs/evidence.md,
"Revocation").

With the default ``check``, every kind fetches or is given the revocation data it needs, and missing
data is COLLATERAL_UNAVAILABLE. With ``skip`` (``BROKER_REVOCATION=skip``, ``verify --revocation skip``)
the revocation-check sites read :func:`skipped` and do not look; the broker then records
``"revocation": "skipped"`` in the verifier claims and caps the result at warning by raising the
``hardware`` claim to at least 32 ("unsafe": the platform's keys may have been revoked, unknown).
"""

from __future__ import annotations

import dataclasses

from attestation_broker import appraisal as ar4si
from attestation_broker.appraisal import Appraisal
from attestation_broker.config import Settings
from attestation_broker.errors import CONFIG_INVALID

MODES = ("check", "skip")


def skipped(settings: Settings) -> bool:
    if settings.revocation not in MODES:
        raise CONFIG_INVALID(f"revocation must be one of {', '.join(MODES)}")
    return settings.revocation == "skip"


def cap(appraisal: Appraisal) -> Appraisal:
    """The appraisal as it stands without revocation data: recorded, and at best a warning."""
    vector = dict(appraisal.trustworthiness_vector)
    if vector.get("hardware", ar4si.NO_CLAIM) < ar4si.HW_UNSAFE:
        vector["hardware"] = ar4si.HW_UNSAFE
    verifier_claims = {**appraisal.verifier_claims, "revocation": "skipped"}
    findings = (*appraisal.findings, "revocation not checked (revocation = skip): result capped at warning")
    return dataclasses.replace(
        appraisal, trustworthiness_vector=vector, verifier_claims=verifier_claims, findings=findings
    )
