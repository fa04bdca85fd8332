"""The ``nvidia-gpu`` Verifier: NVIDIA Hopper / Blackwell GPUs and NVSwitches in confidential-computing
mode, one device or an evidence list (docs/evidence.md, "NVIDIA GPUs").

Every device of a list must verify; one refusal refuses the whole submission. Devices must be
distinct (by their per-device BROM certificate). Supplied RIMs must each belong to some device.
Nonce binding: each SPDM requester nonce == SHA-256(broker nonce ‖ user data)
(:meth:`ExpectedBinding.spdm_nonce`).
"""

from __future__ import annotations

from datetime import timedelta

from attestation_broker import revocation
from attestation_broker.appraisal import Appraisal
from attestation_broker.verifier import Submission, VerifyContext

from .appraise import FACTS, appraise
from .claims import attester_claims, verifier_claims
from .errors import NVIDIA_DEVICE_DUPLICATE, NVIDIA_RIM_MISMATCH
from .inputs import INPUTS, collect
from .pipeline import DeviceResult, verify_device
from .rim import verify_rim
from .trust import NvidiaRoots, fingerprint


class NvidiaGpuVerifier:
    kind = "nvidia-gpu"
    inputs = INPUTS

    def __init__(self, roots: NvidiaRoots | None = None) -> None:
        # Tests inject a generated hierarchy; production uses the pinned NVIDIA roots (loaded on first use).
        self._roots = roots

    @property
    def roots(self) -> NvidiaRoots:
        if self._roots is None:
            self._roots = NvidiaRoots.pinned()
        return self._roots

    def verify_devices(self, submission: Submission, ctx: VerifyContext) -> list[DeviceResult]:
        """Every device verified (distinct devices, every supplied RIM used); requirements are policy rules."""
        collected = collect(submission)
        skew = timedelta(seconds=ctx.settings.clock_skew_seconds)
        rims = tuple(verify_rim(blob, self.roots.rim, now=ctx.now, skew=skew) for blob in collected.rims)
        skip = revocation.skipped(ctx.settings)
        devices: list[DeviceResult] = []
        seen: set[str] = set()
        for device in collected.devices:
            result = verify_device(device, submission, ctx, rims, roots=self.roots, skip_revocation=skip)
            identity = fingerprint(result.chain.certificates[min(1, len(result.chain.certificates) - 1)])
            if identity in seen:
                raise NVIDIA_DEVICE_DUPLICATE()
            seen.add(identity)
            devices.append(result)
        used = {lookup.rim.sha256 for d in devices for lookup in d.rims if lookup.rim is not None}
        for rim in rims:
            if rim.sha256 not in used:
                raise NVIDIA_RIM_MISMATCH(f"supplied RIM {rim.product} {rim.version} belongs to no device")
        return devices

    def _appraisal(self, devices: list[DeviceResult]) -> Appraisal:
        verdict = appraise(devices, FACTS)
        return Appraisal(
            kind=self.kind,
            trustworthiness_vector=verdict.vector,
            attester_claims=attester_claims(devices),
            verifier_claims=verifier_claims(devices),
            findings=verdict.findings,
        )

    def verify(self, submission: Submission, ctx: VerifyContext) -> Appraisal:
        return self._appraisal(self.verify_devices(submission, ctx))

    def verify_each(self, submission: Submission, ctx: VerifyContext) -> list[Appraisal]:
        """One appraisal per device (composite CPU + GPU tokens carry one submod per device)."""
        return [self._appraisal([device]) for device in self.verify_devices(submission, ctx)]
