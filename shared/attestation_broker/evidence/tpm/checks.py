"""TPM2 quote verification: AK signature over TPMS_ATTEST, extraData binding, pcrDigest recomputation.

TPM 2.0 Part 3 §18.4 (TPM2_Quote): the TPM signs H_scheme(TPMS_ATTEST) with the AK; pcrDigest is
H_scheme(PCR values of every selection, in selection-list order, ascending PCR index within a bank).
The hash is the *signing scheme's* hash, whatever the bank (MANIFEST-vtpm-cloud.md "Surprises" 5).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from attestation_broker.binding import require_equal

from .abi import (
    ALG_ECDSA,
    ALG_RSAPSS,
    ALG_RSASSA,
    ALG_SHA256,
    HASH_NAMES,
    SIG_NAMES,
    Attest,
    Signature,
    parse_attest,
    parse_signature,
)
from .digest import bank_alg, crypto_hash, digest_size, hash_bytes
from .errors import (
    TPM_AK_NOT_RESTRICTED,
    TPM_PCR_BANK_NOT_QUOTED,
    TPM_PCR_DIGEST_MISMATCH,
    TPM_PCR_VALUES_MISSING,
    TPM_PCRS_MALFORMED,
    TPM_SIGNATURE_INVALID,
    TPM_SIGNATURE_SCHEME_MISMATCH,
)
from .keys import AkKey, AkPublic, load_ak_public


@dataclass(frozen=True)
class VerifiedQuote:
    """A quote whose signature verified with ``ak``.

    ``pcrs`` holds the values of the selected PCRs of ``bank`` when they were supplied and hash to
    ``pcr_digest`` (None when no values were supplied: then only the digest is attested).
    ``extra_data_checked`` says whether extraData was compared with an expected value.
    """

    attest: Attest
    signature: Signature
    ak: AkPublic
    bank: str
    selected: tuple[int, ...]
    pcrs: Mapping[int, bytes] | None
    pcr_digest: bytes
    hash_alg: int
    extra_data_checked: bool

    @property
    def extra_data(self) -> bytes:
        return self.attest.extra_data

    @property
    def signature_scheme(self) -> str:
        """e.g. ``rsassa-sha256``."""
        return f"{SIG_NAMES[self.signature.sig_alg]}-{HASH_NAMES[self.hash_alg]}"


def _verify_signature(attest: bytes, sig: Signature, ak: AkPublic) -> int:
    """Verify; return the hash algorithm actually used."""
    scheme = ak.scheme
    if sig.bare:
        # Azure's bare PKCS#1 v1.5 signature: the hash is the key's scheme hash (SHA-256 if unknown).
        hash_alg = scheme[1] if scheme is not None and scheme[0] == ALG_RSASSA else ALG_SHA256
        sig_alg = ALG_RSASSA
    else:
        assert sig.hash_alg is not None
        hash_alg, sig_alg = sig.hash_alg, sig.sig_alg
    if scheme is not None and scheme != (sig_alg, hash_alg):
        raise TPM_SIGNATURE_SCHEME_MISMATCH("signature scheme differs from the AK's restricted scheme")
    key: AkKey = ak.key
    h = crypto_hash(hash_alg)
    try:
        if sig_alg in (ALG_RSASSA, ALG_RSAPSS):
            if not isinstance(key, rsa.RSAPublicKey):
                raise TPM_SIGNATURE_SCHEME_MISMATCH("RSA signature but the AK is not RSA")
            if len(sig.value) != (key.key_size + 7) // 8:
                raise TPM_SIGNATURE_INVALID("signature length differs from the AK modulus size")
            pad: padding.AsymmetricPadding = (
                padding.PKCS1v15() if sig_alg == ALG_RSASSA else padding.PSS(padding.MGF1(h), padding.PSS.AUTO)
            )
            key.verify(sig.value, attest, pad, h)
        elif sig_alg == ALG_ECDSA:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise TPM_SIGNATURE_SCHEME_MISMATCH("ECDSA signature but the AK is not ECC")
            key.verify(encode_dss_signature(sig.r, sig.s), attest, ec.ECDSA(h))
        else:  # pragma: no cover - parse_signature admits only the three schemes
            raise TPM_SIGNATURE_SCHEME_MISMATCH("unsupported signature algorithm")
    except InvalidSignature as exc:
        raise TPM_SIGNATURE_INVALID("quote signature does not verify with the AK") from exc
    return hash_alg


def pcr_digest(values: Mapping[int, bytes], selected: tuple[int, ...], hash_alg: int) -> bytes:
    """H(concat of ``values[i]`` for i in ``selected``, ascending): a single-bank quote's pcrDigest."""
    try:
        return hash_bytes(hash_alg, b"".join(values[i] for i in sorted(selected)))
    except KeyError as exc:
        raise TPM_PCR_VALUES_MISSING(f"no value for selected PCR {exc.args[0]}") from exc


def _refuse_values(pcrs: Mapping[int, bytes], selected: tuple[int, ...], bank: str, size: int) -> None:
    """The error for supplied PCR values that miss a selected PCR or have the wrong size (the first, in order)."""
    for i in selected:
        if i not in pcrs:
            raise TPM_PCR_VALUES_MISSING(f"no value for selected PCR {i}")
        value = bytes(pcrs[i])
        if len(value) != size:
            raise TPM_PCRS_MALFORMED(f"PCR {i} is {len(value)} bytes, bank {bank} needs {size}")


def select_bank(attest: Attest, pcr_bank: str | None) -> tuple[str, tuple[int, ...]]:
    """The bank to verify and its selected PCRs: ``pcr_bank`` if selected, else the quote's only bank."""
    non_empty = [s for s in attest.pcr_select if s.pcrs]
    if pcr_bank is None:
        if len(non_empty) != 1:
            raise TPM_PCR_BANK_NOT_QUOTED(f"quote selects PCRs in {len(non_empty)} banks; name the bank")
        return non_empty[0].bank, non_empty[0].pcrs
    alg = bank_alg(pcr_bank)
    for sel in non_empty:
        if sel.hash_alg == alg:
            return sel.bank, sel.pcrs
    raise TPM_PCR_BANK_NOT_QUOTED(f"quote selects no PCRs in bank {HASH_NAMES[alg]}")


def verify_quote(
    attest: bytes,
    signature: bytes | Signature,
    ak: bytes | str | Mapping[str, object] | AkKey | AkPublic,
    *,
    expected_extra_data: bytes | None,
    pcrs: Mapping[int, bytes] | None = None,
    pcr_bank: str | None = None,
    require_restricted: bool = True,
) -> VerifiedQuote:
    """Verify a TPM2 quote and return what it attests.

    - ``attest``: TPMS_ATTEST bytes; ``signature``: TPMT_SIGNATURE or bare RSA PKCS#1 v1.5 bytes;
      ``ak``: anything :func:`~attestation_broker.evidence.tpm.keys.load_ak_public` accepts.
    - ``expected_extra_data``: the exact qualifying data the quote must carry (plain ``tpm`` kind:
      ``binding.tpm_extra_data()``; composites pass their own bytes). ``None`` skips the check — it is a
      required keyword so that skipping is always explicit.
    - ``pcrs``: values of the quoted bank (index → digest); when given they must cover every selected PCR
      and hash to pcrDigest. ``pcr_bank``: "sha1"/"sha256"/"sha384"/"sha512"; None = the quote's only bank.
    - ``require_restricted``: refuse a TPMT_PUBLIC AK that is not a restricted signing key.

    Raises TPM_ATTEST_*, TPM_SIGNATURE_*, TPM_AK_*, NONCE_BINDING_MISMATCH, TPM_PCR_* codes.
    """
    parsed = parse_attest(attest)
    sig = signature if isinstance(signature, Signature) else parse_signature(signature)
    key = load_ak_public(ak)
    if require_restricted and key.restricted is False:
        raise TPM_AK_NOT_RESTRICTED("AK TPMT_PUBLIC lacks restricted+sign attributes")
    hash_alg = _verify_signature(parsed.raw, sig, key)
    checked = expected_extra_data is not None
    if expected_extra_data is not None:
        require_equal("TPM quote extraData", parsed.extra_data, expected_extra_data)
    bank, selected = select_bank(parsed, pcr_bank)
    values: Mapping[int, bytes] | None = None
    if pcrs is not None:
        others = [s for s in parsed.pcr_select if s.pcrs and s.bank != bank]
        if others:
            raise TPM_PCR_VALUES_MISSING(f"quote also selects bank {others[0].bank}; values cover one bank")
        size = digest_size(bank_alg(bank))
        given = [pcrs.get(i, b"") for i in selected]  # a missing value reads as empty: never a digest size
        if set(map(type, given)) != {bytes}:
            given = [bytes(v) for v in given]  # bytearray, memoryview, ...: kept as bytes
        if set(map(len, given)) != {size}:
            _refuse_values(pcrs, selected, bank, size)
        chosen = dict(zip(selected, given, strict=True))
        if not hmac.compare_digest(pcr_digest(chosen, selected, hash_alg), parsed.pcr_digest):
            raise TPM_PCR_DIGEST_MISMATCH(f"PCR values of bank {bank} do not match pcrDigest")
        values = MappingProxyType(chosen)
    return VerifiedQuote(parsed, sig, key, bank, selected, values, parsed.pcr_digest, hash_alg, checked)
