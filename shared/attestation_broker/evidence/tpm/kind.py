"""The plain ``tpm`` evidence kind: a TPM2 quote by a policy-pinned AK, optional PCR values and event log.

Wiring only: inputs (inputs.py) → quote verification (verify.py) → event-log replay (eventlog.py) →
policy (appraise.py) → claims (claims.py). Nonce binding: quote extraData == ``binding.tpm_extra_data()``
(SHA-256(nonce ‖ user_data)).
"""

from __future__ import annotations

import hashlib
from typing import Any

from attestation_broker.appraisal import Appraisal
from attestation_broker.verifier import Submission, VerifyContext

from .abi import ALG_SHA256, parse_attest
from .appraise import FACTS, appraise
from .checks import VerifiedQuote, select_bank, verify_quote
from .claims import quote_claims
from .errors import TPM_PCR_VALUES_MISSING
from .eventlog import VerifiedEventLog, event_log_claims, verify_event_log
from .inputs import INPUTS, collect_inputs

KIND = "tpm"


def measurement(quote: VerifiedQuote) -> str:
    """Hex SHA-256 PCR digest of the quoted PCRs (the quote's own digest when it is SHA-256)."""
    if quote.hash_alg == ALG_SHA256 or quote.pcrs is None:
        return quote.pcr_digest.hex()
    return hashlib.sha256(b"".join(quote.pcrs[i] for i in sorted(quote.selected))).hexdigest()


class TpmVerifier:
    """Verifier for kind ``tpm``."""

    kind = KIND
    inputs = INPUTS

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        policy = FACTS
        inputs = collect_inputs(submission)
        bank, _ = select_bank(parse_attest(inputs.quote), policy.pcr_bank)
        values = inputs.pcrs.get(bank) if inputs.pcrs is not None else None
        expected = submission.binding.tpm_extra_data() if submission.binding is not None else None
        # Signature and binding are checked before any complaint about supplied values (verify_quote's order).
        quote = verify_quote(
            inputs.quote, inputs.signature, inputs.ak, expected_extra_data=expected, pcrs=values, pcr_bank=bank
        )
        if inputs.pcrs is not None and values is None:
            raise TPM_PCR_VALUES_MISSING(f"PCR values supplied, but none for the quoted bank {bank}")
        log: VerifiedEventLog | None = None
        if inputs.event_log is not None:
            if quote.pcrs is None:
                raise TPM_PCR_VALUES_MISSING("an event log needs the quoted PCR values to be replayed against")
            log = verify_event_log(inputs.event_log, quote.pcrs, quote.bank, ignore_pcrs=policy.event_log_ignore_pcrs)
        result = appraise(policy, quote, log)

        tpm_claims: dict[str, Any] = quote_claims(quote)
        if log is not None:
            tpm_claims.update(event_log_claims(log))
        attester: dict[str, Any] = {
            "tee": "vtpm",
            "platform": policy.platform,
            "measurement": measurement(quote),
            "tpm": tpm_claims,
        }
        verifier_claims: dict[str, Any] = {
            "evidence_kind": KIND,
            "collateral": [],
            "bindings": {"nonce": "checked" if quote.extra_data_checked else "not-requested"},
            "signing_key": "ak",
            "ak_spki_sha256": quote.ak.spki_sha256,
            "ak_source": quote.ak.source,
            "event_log": "replayed" if log is not None else "absent",
        }
        if result.findings:
            verifier_claims["findings"] = list(result.findings)
        return Appraisal(
            kind=KIND,
            trustworthiness_vector=result.vector,
            attester_claims=attester,
            verifier_claims=verifier_claims,
            findings=result.findings,
        )
