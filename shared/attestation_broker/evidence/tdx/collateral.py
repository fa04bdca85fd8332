"""Intel collateral for TDX: what it is, where it lives (Intel PCS v4 URLs), and fetching it.

URLs (Intel "Provisioning Certification Service for ECDSA Attestation" API v4):
``{pcs}/tdx/certification/v4/tcb?fmspc=<FMSPC>`` (TDX TCB info), ``{pcs}/tdx/certification/v4/qe/identity``
(TD_QE identity), ``{pcs}/sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der`` (PCK CRL).
The Intel SGX Root CA CRL is published outside PCS; its URL is the ``intel_root_crl_url`` setting
(Intel's ``https://certificates.trustedservices.intel.com/IntelSGXRootCA.der`` by default; a PCCS
serves it at ``/sgx/certification/v4/rootcacrl``).

Every object goes through ``ctx.collateral`` (memory → store → origin). Its ``validate`` hook runs
the full signature check before anything fetched is cached, and the caller re-verifies whatever it
gets back (memoized by exact bytes in :mod:`attestation_broker.evidence.tdx.checks`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from attestation_broker.errors import COLLATERAL_INVALID
from attestation_broker.verifier import VerifyContext


@dataclass(frozen=True)
class CollateralRecord:
    """Where one collateral object came from (becomes a ``verifier_claims.collateral`` entry)."""

    type: str  # tcb_info | qe_identity | pck_crl | root_crl
    url: str | None
    source: str  # memory | store | origin | evidence
    stale: bool = False


@dataclass(frozen=True)
class TdxCollateral:
    """Raw Intel collateral, exactly as served (nothing here is trusted until verified).

    ``tcb_info`` / ``qe_identity`` are PCS response bodies (``{"tcbInfo": {...}, "signature": "<hex>"}``,
    ``{"enclaveIdentity": {...}, "signature": "<hex>"}``); the CRLs are DER (PEM or hex accepted).
    The optional issuer chains (PEM; the PCS response headers) are verified to the pinned root when given.
    """

    tcb_info: bytes
    qe_identity: bytes
    pck_crl: bytes
    root_crl: bytes
    tcb_info_issuer_chain: bytes | None = None
    qe_identity_issuer_chain: bytes | None = None
    pck_crl_issuer_chain: bytes | None = None
    records: tuple[CollateralRecord, ...] = field(default=())

    @classmethod
    def from_dcap_qvl_json(cls, data: bytes | str) -> TdxCollateral:
        """Build from a dcap-qvl ``QuoteCollateralV3`` JSON document (hex CRLs, inner JSON strings)."""
        try:
            doc = json.loads(data)
            tcb_body = '{"tcbInfo":' + doc["tcb_info"] + ',"signature":"' + doc["tcb_info_signature"] + '"}'
            qe_body = (
                '{"enclaveIdentity":' + doc["qe_identity"] + ',"signature":"' + doc["qe_identity_signature"] + '"}'
            )
            return cls(
                tcb_info=tcb_body.encode(),
                qe_identity=qe_body.encode(),
                pck_crl=bytes.fromhex(doc["pck_crl"]),
                root_crl=bytes.fromhex(doc["root_ca_crl"]),
                tcb_info_issuer_chain=doc["tcb_info_issuer_chain"].encode(),
                qe_identity_issuer_chain=doc["qe_identity_issuer_chain"].encode(),
                pck_crl_issuer_chain=doc["pck_crl_issuer_chain"].encode(),
                records=tuple(
                    CollateralRecord(t, None, "evidence") for t in ("tcb_info", "qe_identity", "pck_crl", "root_crl")
                ),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            raise COLLATERAL_INVALID("dcap-qvl collateral JSON is malformed") from None


@dataclass(frozen=True)
class CollateralUrls:
    tcb_info: str
    qe_identity: str
    pck_crl: str
    root_crl: str


def collateral_urls(pcs_url: str, fmspc: bytes, ca: str, *, root_crl_url: str) -> CollateralUrls:
    base = pcs_url.rstrip("/")
    return CollateralUrls(
        tcb_info=f"{base}/tdx/certification/v4/tcb?fmspc={fmspc.hex().upper()}",
        qe_identity=f"{base}/tdx/certification/v4/qe/identity",
        pck_crl=f"{base}/sgx/certification/v4/pckcrl?ca={ca}&encoding=der",
        root_crl=root_crl_url,
    )


# Tags for stored collateral, named as in the background refresher's registry
# (``attestation_broker.trust.refresh.COLLATERAL_TYPES``): both Intel CRLs are plain X.509 CRLs ("crl").
_STORE_TYPES = {"tcb_info": "tcb_info", "qe_identity": "qe_identity", "pck_crl": "crl", "root_crl": "crl"}


@dataclass(frozen=True)
class Checks:
    """Per-object hooks: ``expires`` (end of validity from the bytes) and ``validate`` (raises)."""

    expires: Callable[[bytes], datetime | None]
    validate: Callable[[bytes], None]


def fetch_collateral(
    ctx: VerifyContext,
    urls: CollateralUrls,
    checks: dict[str, Checks],
) -> TdxCollateral:
    """Fetch the four collateral objects through the collateral cache (stale only within the grace)."""
    grace = timedelta(seconds=max(0, ctx.settings.collateral_stale_grace_seconds))
    bodies: dict[str, bytes] = {}
    records = []
    for kind, url in (
        ("tcb_info", urls.tcb_info),
        ("qe_identity", urls.qe_identity),
        ("pck_crl", urls.pck_crl),
        ("root_crl", urls.root_crl),
    ):
        check = checks[kind]
        obj = ctx.collateral.get(
            url,
            now=ctx.now,
            expires=check.expires,
            validate=check.validate,
            stale_grace=grace,
            collateral_type=_STORE_TYPES[kind],
        )
        bodies[kind] = obj.body
        records.append(CollateralRecord(kind, url, obj.source, obj.stale))
    return TdxCollateral(
        tcb_info=bodies["tcb_info"],
        qe_identity=bodies["qe_identity"],
        pck_crl=bodies["pck_crl"],
        root_crl=bodies["root_crl"],
        records=tuple(records),
    )
