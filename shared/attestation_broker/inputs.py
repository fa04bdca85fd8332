"""One input collector for every evidence kind: what a submission may carry, declared once per kind.

A kind declares an :class:`InputSpec`: the envelope ``fields`` it accepts and the roles an extra file can
play, each with a recognizer over the file's bytes (tried in declaration order) and whether the role may
be filled more than once (certificate chains) or exactly once (a signature, a CRL, a second report).
:meth:`InputSpec.collect` applies the same rules to every kind, before any parsing or verification:

* an envelope field the kind does not declare is ``INPUT_FIELD_UNKNOWN`` (a typo such as ``colateral``
  must never silently fall back to fetching);
* an extra file no role recognizes is ``INPUT_EXTRA_UNRECOGNIZED`` (nothing is silently dropped);
* a second candidate for a single-valued role — from extras, from a field naming the same role, or from
  the evidence itself — is ``INPUT_ROLE_DUPLICATE`` (nothing is silently replaced); the roles the evidence
  fills may depend on its form (an NVIDIA SDK evidence list carries its own certificate chains, a bare
  report does not), so ``evidence_role`` is a role name or a function of the evidence bytes;
* base64 in fields has one rule, :func:`decode_base64`.

Example (the ``tdx`` kind)::

    INPUTS = InputSpec("tdx", fields={"collateral": "collateral"})

Kinds keep their own decoders for what each role means; the collector only decides which bytes are
which part and refuses ambiguity.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from attestation_broker.errors import (
    INPUT_BASE64_INVALID,
    INPUT_EXTRA_UNRECOGNIZED,
    INPUT_FIELD_UNKNOWN,
    INPUT_ROLE_DUPLICATE,
    BrokerError,
    reflect,
)

_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")


def decode_base64(value: object, what: str, error: Callable[[str], BrokerError] = INPUT_BASE64_INVALID) -> bytes:
    """The broker's one base64 rule (RFC 4648 §4 or §5): whitespace is ignored; the alphabet is standard or
    URL-safe, never mixed; ``=`` padding is optional but, when present, must be correct; any other
    character is an error. Raises ``error`` (INPUT_BASE64_INVALID unless the caller names its own code).

    The alphabet and padding are checked by ``binascii.a2b_base64(strict_mode=True)`` in C (Python 3.11+), which
    refuses any character outside the standard alphabet, leading or discontinuous padding and data after it; the
    checks before it add what strict mode allows: mixed alphabets, padding on an incomplete quantum, more than two
    ``=``."""
    if not isinstance(value, str):
        raise error(f"{what} must be a base64 string")
    text = "".join(value.split())
    urlsafe = "-" in text or "_" in text
    padding = len(text) - len(text.rstrip("="))
    if (urlsafe and ("+" in text or "/" in text)) or padding > 2 or (padding and len(text) % 4):
        raise error(f"{what} is not valid base64")
    if urlsafe:
        text = text.translate(_URLSAFE_TO_STANDARD)
    try:
        return binascii.a2b_base64(text + "=" * (-len(text) % 4), strict_mode=True)
    except (binascii.Error, ValueError):
        raise error(f"{what} is not valid base64") from None


@dataclass(frozen=True)
class Role:
    """A part an extra file can be: recognized by ``recognize(bytes)``; ``many`` allows several."""

    name: str
    recognize: Callable[[bytes], bool]
    many: bool = False


@dataclass(frozen=True)
class Collected:
    """Extras by role (in submission order) and the declared fields (undecoded: the kind decodes them)."""

    extras: Mapping[str, tuple[bytes, ...]]
    fields: Mapping[str, Any]

    def one(self, role: str) -> bytes | None:
        found = self.extras.get(role, ())
        return found[0] if found else None

    def all(self, role: str) -> tuple[bytes, ...]:
        return self.extras.get(role, ())


@dataclass(frozen=True)
class InputSpec:
    """What one evidence kind accepts. ``fields`` maps each envelope field to the role it fills (fields
    with a role of their own, such as ``product``, map to their own name); ``evidence_role`` is the role
    the evidence bytes fill (or a function naming the roles they fill), so an extra of the same single
    role is a duplicate."""

    kind: str
    fields: Mapping[str, str] = field(default_factory=dict)
    roles: Sequence[Role] = ()
    evidence_role: str | Callable[[bytes], Sequence[str]] | None = None

    def role(self, name: str) -> Role | None:
        return next((r for r in self.roles if r.name == name), None)

    def evidence_roles(self, evidence: bytes) -> Sequence[str]:
        """The roles non-empty ``evidence`` fills (none for empty evidence: a field may carry the part)."""
        if not evidence or self.evidence_role is None:
            return ()
        if isinstance(self.evidence_role, str):
            return (self.evidence_role,)
        return self.evidence_role(evidence)

    def collect(self, evidence: bytes, extras: Sequence[bytes], fields: Mapping[str, Any]) -> Collected:
        unknown = sorted(set(fields) - set(self.fields))
        if unknown:
            names = ", ".join(reflect(n, 40) for n in unknown[:5])
            raise INPUT_FIELD_UNKNOWN(f"{self.kind} accepts no envelope field {names}")
        filled: dict[str, list[bytes]] = {}
        counts: dict[str, int] = {}
        for name in self.evidence_roles(evidence):
            counts[name] = counts.get(name, 0) + 1
        for name in fields:
            counts[self.fields[name]] = counts.get(self.fields[name], 0) + 1
        for index, blob in enumerate(extras):
            found = next((r for r in self.roles if r.recognize(blob)), None)
            if found is None:
                raise INPUT_EXTRA_UNRECOGNIZED(f"extra {index} is not a part {self.kind} evidence accepts")
            filled.setdefault(found.name, []).append(blob)
            counts[found.name] = counts.get(found.name, 0) + 1
        for name, count in counts.items():
            declared = self.role(name)
            if count > 1 and not (declared is not None and declared.many):
                raise INPUT_ROLE_DUPLICATE(f"{self.kind} evidence got {count} candidates for its {name}")
        return Collected({k: tuple(v) for k, v in filled.items()}, dict(fields))
