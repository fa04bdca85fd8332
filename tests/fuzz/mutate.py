"""Structure-aware mutations of a :class:`Submission`, driven by a ``random.Random``-like source.

Under Hypothesis the source is ``st.randoms()`` (choices are recorded, so failures shrink and replay);
the corpus replayer and the long ``make fuzz`` loop use the same functions. A mutation touches one part:
the evidence, one extra file or one envelope field. Byte mutations are the classic ones (bit flip,
interesting value at an offset, truncation, duplication, insertion, splicing a slice elsewhere); text
parts (base64, hex, JSON, PEM, JWS) are also mutated after decoding so the checks behind the decoder run.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import replace
from random import Random
from typing import Any

from attestation_broker.verifier import Submission

INTERESTING = (
    b"\x00",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\x01",
    b"\xff\xff\xff\xff",
    b"\x00\x00\x00\x00",
    b"\x7f\xff\xff\xff",
    b"\x80\x00\x00\x00",
    b"\xff" * 8,
)


def mutate_bytes(rnd: Random, data: bytes, rounds: int = 0) -> bytes:
    buf = bytearray(data)
    for _ in range(rounds or rnd.randint(1, 4)):
        op = rnd.randrange(8)
        pos = rnd.randrange(len(buf) + 1) if buf else 0
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rnd.randrange(8)
        elif op == 1 and buf:
            value = rnd.choice(INTERESTING)
            buf[pos : pos + len(value)] = value
        elif op == 2:
            del buf[pos:]
        elif op == 3:
            end = min(len(buf), pos + rnd.randint(1, 64))
            buf[pos:pos] = buf[pos:end]
        elif op == 4:
            buf[pos:pos] = bytes(rnd.randrange(256) for _ in range(rnd.randint(1, 8)))
        elif op == 5 and buf:
            start = rnd.randrange(len(buf))
            chunk = buf[start : start + rnd.randint(1, 32)]
            dst = rnd.randrange(len(buf))
            buf[dst : dst + len(chunk)] = chunk
        elif op == 6 and buf:
            end = min(len(buf), pos + rnd.randint(1, 64))
            del buf[pos:end]
        elif op == 7 and buf:
            buf[min(pos, len(buf) - 1)] = rnd.randrange(256)
    return bytes(buf)


def _b64_decoded(text: str) -> tuple[bytes, bool] | None:
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4)), True
        return base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True), False
    except (binascii.Error, ValueError):
        return None


def mutate_text(rnd: Random, text: str) -> str:
    """A JWS/PEM/base64/hex text: mutate a decoded segment, or the characters themselves."""
    if rnd.random() < 0.3:
        return mutate_bytes(rnd, text.encode()).decode("latin-1")
    parts = text.split(".") if text.count(".") == 2 else [text]
    index = rnd.randrange(len(parts))
    part = parts[index]
    if "-----BEGIN" in part:
        lines = part.splitlines()
        body = [i for i, line in enumerate(lines) if line and not line.startswith("-----")]
        if body:
            i = rnd.choice(body)
            raw = _b64_decoded(lines[i])
            if raw is not None:
                lines[i] = base64.b64encode(mutate_bytes(rnd, raw[0])).decode()
        parts[index] = "\n".join(lines)
    else:
        decoded = _b64_decoded(part)
        if decoded is not None:
            raw, urlsafe = decoded
            if urlsafe or len(parts) == 3:
                parts[index] = base64.urlsafe_b64encode(_mutate_maybe_json(rnd, raw)).rstrip(b"=").decode()
            else:
                parts[index] = base64.b64encode(_mutate_maybe_json(rnd, raw)).decode()
        else:
            parts[index] = mutate_bytes(rnd, part.encode()).decode("latin-1")
    return ".".join(parts)


def _mutate_maybe_json(rnd: Random, raw: bytes) -> bytes:
    if raw[:1] in (b"{", b"["):
        try:
            doc = json.loads(raw)
        except ValueError:
            return mutate_bytes(rnd, raw)
        if rnd.random() < 0.7:
            return json.dumps(mutate_json(rnd, doc), separators=(",", ":")).encode()
    return mutate_bytes(rnd, raw)


ODD_VALUES: tuple[Any, ...] = (None, True, 0, -1, 2**64, 1e300, "", "abc", " 01 ", [], {}, [1], {"a": 1}, "\x00")


def mutate_json(rnd: Random, doc: Any, depth: int = 0) -> Any:
    """Replace, drop, duplicate or recurse into one member of a JSON value."""
    if isinstance(doc, dict) and doc and depth < 8:
        key = rnd.choice(sorted(doc))
        out = dict(doc)
        op = rnd.randrange(5)
        if op == 0:
            del out[key]
        elif op == 1:
            out[key] = rnd.choice(ODD_VALUES)
        elif op == 2:
            out[key + "x"] = out[key]
        else:
            out[key] = mutate_json(rnd, doc[key], depth + 1)
        return out
    if isinstance(doc, list) and doc and depth < 8:
        out_list = list(doc)
        i = rnd.randrange(len(out_list))
        op = rnd.randrange(4)
        if op == 0:
            del out_list[i]
        elif op == 1:
            out_list.append(out_list[i])
        else:
            out_list[i] = mutate_json(rnd, out_list[i], depth + 1)
        return out_list
    if isinstance(doc, str) and doc and rnd.random() < 0.8:
        return mutate_text(rnd, doc)
    if isinstance(doc, bool) or doc is None:
        return rnd.choice(ODD_VALUES)
    if isinstance(doc, int):
        return rnd.choice((doc + 1, doc - 1, -doc, doc * 2**32, 2**63, -(2**63), str(doc), float(doc)))
    return rnd.choice(ODD_VALUES)


def _mutate_blob(rnd: Random, data: bytes) -> bytes:
    """Binary or text evidence: text forms (JSON, JWS, PEM, base64, hex) get structure-aware mutations."""
    stripped = data.strip()
    if stripped[:1] in (b"{", b"[") and rnd.random() < 0.7:
        return _mutate_maybe_json(rnd, stripped)
    if stripped and stripped.isascii() and rnd.random() < 0.7:
        try:
            return mutate_text(rnd, stripped.decode("ascii")).encode("latin-1")
        except UnicodeEncodeError:
            pass
    return mutate_bytes(rnd, data)


def mutate_submission(rnd: Random, sub: Submission) -> Submission:
    targets = ["evidence"] * 3 + [f"extra:{i}" for i in range(len(sub.extras))] + [f"field:{k}" for k in sub.fields]
    targets += ["drop-extra"] if sub.extras else []
    targets += ["dup-extra"] if sub.extras else []
    targets += ["add-field"]
    target = rnd.choice(targets)
    if target == "evidence":
        return replace(sub, evidence=_mutate_blob(rnd, sub.evidence))
    if target.startswith("extra:"):
        i = int(target[6:])
        extras = list(sub.extras)
        extras[i] = _mutate_blob(rnd, extras[i])
        return replace(sub, extras=tuple(extras))
    if target == "drop-extra":
        extras = list(sub.extras)
        del extras[rnd.randrange(len(extras))]
        return replace(sub, extras=tuple(extras))
    if target == "dup-extra":
        return replace(sub, extras=(*sub.extras, rnd.choice(sub.extras)))
    if target == "add-field":
        return replace(
            sub, fields={**sub.fields, rnd.choice(("x", "collateral", "vcek", "pcrs")): rnd.choice(ODD_VALUES)}
        )
    key = target[6:]
    fields = dict(sub.fields)
    if rnd.random() < 0.2:
        fields = mutate_json(rnd, fields)
    else:
        fields[key] = _mutate_field(rnd, fields[key])
    return replace(sub, fields=fields)


def _mutate_field(rnd: Random, value: Any) -> Any:
    if isinstance(value, str):
        return mutate_text(rnd, value)
    return mutate_json(rnd, value)
