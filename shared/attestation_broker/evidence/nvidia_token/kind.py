"""The ``nvidia-token`` Verifier: NVIDIA Remote Attestation Service (NRAS) results, as detached EATs
(NRAS API v3, "attest/gpu" and "attest/switch" responses; IETF draft-ietf-rats-eat §4.2.18 submods):

    [["JWT", "<overall ES384 JWT>"], {"GPU-0": "<device ES384 JWT>", "GPU-1": ...}]

The NVIDIA attestation SDK's envelope ``[["JWT", "<SDK HS256 token>"], {"REMOTE_GPU_CLAIMS": <detached
EAT>}]`` is accepted too; its outer HS256 token is signed by nobody the broker trusts and is ignored.

Checks: every JWT is ES384 and verifies with a key of the pinned NRAS issuer's JWKS only
(``nvidia_nras_jwks_url``, via the collateral cache; the ``x5c`` of that JWKS chains to an NVIDIA
Attestation Service CA that is not published, so keys are trusted by the pinned JWKS location, as NVIDIA's
SDK does); ``iss`` is the pinned issuer; times hold at ``now``; the overall token's ``submods`` name exactly
the device tokens supplied, each ``["DIGEST", ["SHA-256", hex(SHA-256(device JWT text))]]``; with a broker
nonce, every ``eat_nonce`` == hex(SHA-256(nonce ‖ user data)) — the SPDM requester nonce the GPUs signed
(:meth:`ExpectedBinding.spdm_nonce`).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from attestation_broker import appraisal as ar4si
from attestation_broker import jsonlimits
from attestation_broker.appraisal import Appraisal
from attestation_broker.errors import NONCE_BINDING_MISMATCH
from attestation_broker.evidence.jose.checks import check_times, pinned_issuer
from attestation_broker.evidence.jose.errors import UPSTREAM_TOKEN_CLAIMS_INVALID, UPSTREAM_TOKEN_KEY_UNKNOWN
from attestation_broker.evidence.jose.jws import check_header, parse_compact, verify_signature
from attestation_broker.evidence.jose.keys import KeySource
from attestation_broker.inputs import InputSpec
from attestation_broker.verifier import Submission, VerifyContext

from .errors import NRAS_EAT_MALFORMED, NRAS_SUBMOD_DIGEST_MISMATCH

MAX_EAT_BYTES = 256 * 1024
MAX_DEVICES = 16
ALGS = ("ES384",)
POLICY_ID = "nvidia-token/default"
# The detached EAT is the whole submission: no envelope field, no extra file (the shared collector's codes).
INPUTS = InputSpec("nvidia-token")


@dataclass(frozen=True)
class VerifiedEat:
    overall: Mapping[str, Any]
    devices: Mapping[str, Mapping[str, Any]]
    collateral: tuple[Mapping[str, Any], ...]


def _detached(evidence: bytes) -> tuple[str, dict[str, str]]:
    if len(evidence) > MAX_EAT_BYTES:
        raise NRAS_EAT_MALFORMED("the NRAS result exceeds the size limit")
    doc = jsonlimits.loads(evidence, NRAS_EAT_MALFORMED, "the NRAS result")
    for _ in range(2):
        if not (isinstance(doc, list) and len(doc) == 2 and isinstance(doc[1], dict)):
            raise NRAS_EAT_MALFORMED()
        head, parts = doc
        if set(parts) == {"REMOTE_GPU_CLAIMS"}:  # the SDK envelope: unwrap once
            doc = parts["REMOTE_GPU_CLAIMS"]
            continue
        if not (isinstance(head, list) and len(head) == 2 and head[0] == "JWT" and isinstance(head[1], str)):
            raise NRAS_EAT_MALFORMED('the first element is not ["JWT", token]')
        if not parts or len(parts) > MAX_DEVICES or not all(isinstance(v, str) for v in parts.values()):
            raise NRAS_EAT_MALFORMED("the device tokens are not a non-empty object of JWT strings")
        return head[1], {str(k): str(v) for k, v in parts.items()}
    raise NRAS_EAT_MALFORMED()


class NvidiaTokenVerifier:
    kind = "nvidia-token"
    inputs = INPUTS

    def __init__(self) -> None:
        self._keys = KeySource()

    def _verify_jwt(self, token: str, ctx: VerifyContext, records: list[Mapping[str, Any]]) -> dict[str, Any]:
        jws = parse_compact(token.encode("ascii", errors="replace"), max_bytes=MAX_EAT_BYTES)
        check_header(jws, ALGS)
        kid = jws.header.get("kid")
        if not isinstance(kid, str):
            raise UPSTREAM_TOKEN_KEY_UNKNOWN("the NRAS token names no kid")
        issuer = pinned_issuer(jws.unverified_payload, (ctx.settings.nvidia_nras_issuer,))
        resolved = self._keys.resolve(ctx, issuer=issuer, jwks_url=ctx.settings.nvidia_nras_jwks_url, kid=kid)
        key = resolved.key
        skew = timedelta(seconds=ctx.settings.clock_skew_seconds)
        if (key.not_before and ctx.now + skew < key.not_before) or (key.not_after and ctx.now - skew > key.not_after):
            raise UPSTREAM_TOKEN_KEY_UNKNOWN("the NRAS signing key's certificate is not valid at this time")
        payload = verify_signature(jws, key.key)
        pinned_issuer(payload, (ctx.settings.nvidia_nras_issuer,))
        check_times(payload, ctx.now, ctx.settings.clock_skew_seconds)
        for record in resolved.collateral:
            if record not in records:
                records.append(record)
        return payload

    def verify_eat(self, submission: Submission, ctx: VerifyContext) -> VerifiedEat:
        INPUTS.collect(submission.evidence, submission.extras, submission.fields)
        overall_token, device_tokens = _detached(submission.evidence)
        records: list[Mapping[str, Any]] = []
        overall = self._verify_jwt(overall_token, ctx, records)
        submods = overall.get("submods")
        if not isinstance(submods, dict) or set(submods) != set(device_tokens):
            raise NRAS_SUBMOD_DIGEST_MISMATCH("the overall token's submods name other devices")
        devices: dict[str, Mapping[str, Any]] = {}
        for name, token in device_tokens.items():
            entry = submods[name]
            expected = hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()
            ok = (
                isinstance(entry, list)
                and len(entry) == 2
                and entry[0] == "DIGEST"
                and isinstance(entry[1], list)
                and len(entry[1]) == 2
                and entry[1][0] == "SHA-256"
                and isinstance(entry[1][1], str)
                and hmac.compare_digest(entry[1][1].lower(), expected)
            )
            if not ok:
                raise NRAS_SUBMOD_DIGEST_MISMATCH(f"submod {name[:32]!r} does not carry its token's SHA-256")
            devices[name] = self._verify_jwt(token, ctx, records)
        if submission.binding is not None:
            expected_nonce = submission.binding.spdm_nonce().hex()
            for payload in (overall, *devices.values()):
                value = payload.get("eat_nonce")
                if not isinstance(value, str) or not hmac.compare_digest(value.lower(), expected_nonce):
                    raise NONCE_BINDING_MISMATCH("the NRAS eat_nonce is not the broker binding")
        return VerifiedEat(overall, devices, tuple(records))

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        eat = self.verify_eat(submission, ctx)
        overall_ok = eat.overall.get("x-nvidia-overall-att-result")
        if not isinstance(overall_ok, bool):
            raise UPSTREAM_TOKEN_CLAIMS_INVALID("x-nvidia-overall-att-result is not a boolean")
        findings: list[str] = []
        executables = ar4si.EXEC_APPROVED_RUNTIME
        runtime = ar4si.RUNTIME_ENCRYPTED
        devices = []
        for name, claims in sorted(eat.devices.items()):
            measres = claims.get("measres")
            if measres != "success":
                executables = ar4si.EXEC_CONTRAINDICATED
                findings.append(f"{name}: NRAS measurement result {str(measres)[:32]!r}")
            if claims.get("dbgstat") != "disabled":
                runtime = ar4si.RUNTIME_VISIBLE
                findings.append(f"{name}: debug status {str(claims.get('dbgstat'))[:32]!r}")
            devices.append(
                {
                    "name": name,
                    "hwmodel": claims.get("hwmodel"),
                    "ueid": claims.get("ueid"),
                    "driver_version": claims.get("x-nvidia-gpu-driver-version"),
                    "vbios_version": claims.get("x-nvidia-gpu-vbios-version")
                    or claims.get("x-nvidia-switch-bios-version"),
                    "measres": measres,
                    "secboot": claims.get("secboot"),
                    "dbgstat": claims.get("dbgstat"),
                }
            )
        if not overall_ok:
            executables = ar4si.EXEC_CONTRAINDICATED
            findings.append("NRAS overall attestation result is false")
        vector = {
            "hardware": ar4si.HW_GENUINE,
            "instance-identity": ar4si.IDENTITY_TRUSTED,
            "executables": executables,
            "runtime-opaque": runtime,
        }
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=vector,
            attester_claims={
                "tee": "nvidia-cc",
                "platform": "unknown",
                "nvidia": {"source": "nras", "overall_result": overall_ok, "devices": devices},
            },
            verifier_claims={
                "evidence_kind": self.kind,
                "collateral": [dict(c) for c in eat.collateral],
                "bindings": {"nonce": "checked" if submission.binding is not None else "not-requested"},
                "upstream": {
                    "iss": eat.overall.get("iss"),
                    "jti": eat.overall.get("jti"),
                    "iat": eat.overall.get("iat"),
                    "exp": eat.overall.get("exp"),
                    "x-nvidia-ver": eat.overall.get("x-nvidia-ver"),
                },
            },
            policy_ids=(POLICY_ID,),
            findings=tuple(findings),
        )
