"""AMD Key Distribution Service collateral (AMD KDS interface spec #57230): VCEK certificates and the
ARK-signed CRLs, fetched through the broker's collateral cache (memory → shared store → origin).

URLs (``base`` = ``settings.amd_kds_url``; SPLs are the REPORTED_TCB components, two-digit decimal)::

    {base}/vcek/v1/{Milan|Genoa}/{chip_id_hex}?blSPL=BB&teeSPL=TT&snpSPL=SS&ucodeSPL=UU
    {base}/vcek/v1/Turin/{hwid_hex}?fmcSPL=FF&blSPL=BB&teeSPL=TT&snpSPL=SS&ucodeSPL=UU   (hwid = CHIP_ID[0:8])
    {base}/vcek/v1/{product}/crl        {base}/vlek/v1/{product}/crl

A VCEK names one chip at one TCB and never changes (cached without expiry); a CRL is cached until its
nextUpdate. Everything returned is re-verified by the caller, whatever tier it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from attestation_broker.errors import COLLATERAL_INVALID
from attestation_broker.evidence.snp.abi import TcbVersion
from attestation_broker.evidence.snp.certs import load_certificate
from attestation_broker.evidence.snp.checks import ProductRoots, VerifiedCrl, hwid_for, load_crl, verify_crl
from attestation_broker.trust.cache import CachedObject
from attestation_broker.verifier import VerifyContext


@dataclass(frozen=True)
class Fetched:
    body: bytes
    url: str
    source: str
    stale: bool


def vcek_url(base: str, product: str, chip_id: bytes, tcb: TcbVersion) -> str:
    hwid = hwid_for(product, chip_id).hex()
    query = f"blSPL={tcb.bootloader:02d}&teeSPL={tcb.tee:02d}&snpSPL={tcb.snp:02d}&ucodeSPL={tcb.microcode:02d}"
    if product == "Turin":
        query = f"fmcSPL={tcb.fmc or 0:02d}&" + query
    return f"{base.rstrip('/')}/vcek/v1/{product}/{hwid}?{query}"


def crl_url(base: str, product: str, kind: str) -> str:
    return f"{base.rstrip('/')}/{kind}/v1/{product}/crl"


def _grace(ctx: VerifyContext) -> timedelta:
    return timedelta(seconds=ctx.settings.collateral_stale_grace_seconds)


def _validate_vcek(body: bytes) -> None:
    try:
        load_certificate(body)
    except Exception:  # noqa: BLE001 - anything unparsable from the origin is invalid collateral
        raise COLLATERAL_INVALID("AMD KDS returned a VCEK that is not DER X.509") from None


def _never(_body: bytes) -> datetime | None:
    return None


def fetch_vcek(ctx: VerifyContext, url: str) -> Fetched:
    obj = ctx.collateral.get(url, now=ctx.now, expires=_never, validate=_validate_vcek, collateral_type="vcek")
    return Fetched(obj.body, url, obj.source, obj.stale)


def _crl_expiry(body: bytes) -> datetime | None:
    return load_crl(body).next_update_utc


def _validate_crl(body: bytes, roots: ProductRoots) -> None:
    verify_crl(body, roots)


def fetch_crl(ctx: VerifyContext, url: str, roots: ProductRoots) -> tuple[VerifiedCrl, CachedObject]:
    obj = ctx.collateral.get(
        url,
        now=ctx.now,
        expires=_crl_expiry,
        validate=lambda body: _validate_crl(body, roots),
        stale_grace=_grace(ctx),
        collateral_type="crl",
    )
    # Re-verify whatever tier served it (memoized by exact bytes, so a cache hit costs a hash).
    return verify_crl(obj.body, roots), obj
