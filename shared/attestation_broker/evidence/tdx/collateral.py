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

import dataclasses
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from attestation_broker.errors import COLLATERAL_INVALID
from attestation_broker.evidence.tdx.pcs import SignedJson, signed_pair, split_signed, strict_json
from attestation_broker.trust.cache import CachedObject
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
    """Intel collateral as (signed bytes, signature) pairs plus issuer chains (nothing trusted until verified).

    ``tcb_info`` / ``qe_identity`` are :class:`SignedJson` pairs, split once where they enter the broker
    (:func:`from_pcs_bodies` for PCS/PCCS responses, :meth:`from_dcap_qvl_json` for dcap-qvl documents);
    the CRLs are DER (PEM or hex accepted). The issuer chains (PEM) carry the TCB Signing certificate,
    which is verified to the pinned Intel SGX Root CA and the root CRL on every use: only the root is pinned.
    A CRL is None when it was not supplied: allowed only with ``revocation = skip`` (docs/evidence.md,
    "Revocation"); with ``check`` the pipeline refuses it as COLLATERAL_UNAVAILABLE.
    """

    tcb_info: SignedJson
    qe_identity: SignedJson
    pck_crl: bytes | None
    root_crl: bytes | None
    tcb_info_issuer_chain: bytes | None = None
    qe_identity_issuer_chain: bytes | None = None
    pck_crl_issuer_chain: bytes | None = None
    records: tuple[CollateralRecord, ...] = field(default=())

    @classmethod
    def from_pcs_bodies(
        cls,
        tcb_info: bytes,
        qe_identity: bytes,
        pck_crl: bytes | None,
        root_crl: bytes | None,
        *,
        tcb_info_issuer_chain: bytes | None = None,
        qe_identity_issuer_chain: bytes | None = None,
        pck_crl_issuer_chain: bytes | None = None,
        records: tuple[CollateralRecord, ...] = (),
    ) -> TdxCollateral:
        """From PCS/PCCS response bodies (``{"tcbInfo": {...}, "signature": "<hex>"}``), split here once."""
        return cls(
            tcb_info=split_signed(tcb_info, "tcbInfo"),
            qe_identity=split_signed(qe_identity, "enclaveIdentity"),
            pck_crl=pck_crl,
            root_crl=root_crl,
            tcb_info_issuer_chain=tcb_info_issuer_chain,
            qe_identity_issuer_chain=qe_identity_issuer_chain,
            pck_crl_issuer_chain=pck_crl_issuer_chain,
            records=records,
        )

    @classmethod
    def from_dcap_qvl_json(cls, data: bytes | str) -> TdxCollateral:
        """Build from a dcap-qvl ``QuoteCollateralV3`` JSON document: the pairs are taken as they travel.

        ``tcb_info`` / ``qe_identity`` are the signed JSON texts (strings) and ``*_signature`` their hex
        signatures; CRLs are hex (DER); issuer chains are PEM. Unknown members are refused so that a typo
        never silently drops collateral. The CRL members may be absent (recorded collateral kept for
        ``revocation = skip``); the pipeline then refuses them under ``check`` as COLLATERAL_UNAVAILABLE.
        """
        try:
            doc = strict_json(data.decode("utf-8") if isinstance(data, bytes) else data)
        except (ValueError, UnicodeDecodeError):
            raise COLLATERAL_INVALID("dcap-qvl collateral JSON is malformed") from None
        if not isinstance(doc, dict):
            raise COLLATERAL_INVALID("dcap-qvl collateral JSON is not an object")
        unknown = set(doc) - DCAP_QVL_MEMBERS - DCAP_QVL_OPTIONAL
        missing = DCAP_QVL_MEMBERS - set(doc)
        if unknown or missing:
            names = ", ".join(sorted(unknown | missing))[:200]
            raise COLLATERAL_INVALID(f"dcap-qvl collateral JSON has unknown or missing members: {names}")
        if not all(isinstance(doc[k], str) for k in DCAP_QVL_MEMBERS | (DCAP_QVL_CRLS & set(doc))):
            raise COLLATERAL_INVALID("dcap-qvl collateral JSON members must be strings")
        try:
            pck_crl = bytes.fromhex(doc["pck_crl"]) if "pck_crl" in doc else None
            root_crl = bytes.fromhex(doc["root_ca_crl"]) if "root_ca_crl" in doc else None
        except ValueError:
            raise COLLATERAL_INVALID("dcap-qvl collateral CRLs must be hex") from None
        supplied = {"pck_crl": pck_crl, "root_crl": root_crl}
        return cls(
            tcb_info=signed_pair(doc["tcb_info"], doc["tcb_info_signature"], "tcb_info"),
            qe_identity=signed_pair(doc["qe_identity"], doc["qe_identity_signature"], "qe_identity"),
            pck_crl=pck_crl,
            root_crl=root_crl,
            tcb_info_issuer_chain=doc["tcb_info_issuer_chain"].encode(),
            qe_identity_issuer_chain=doc["qe_identity_issuer_chain"].encode(),
            pck_crl_issuer_chain=doc["pck_crl_issuer_chain"].encode() if "pck_crl_issuer_chain" in doc else None,
            records=tuple(
                CollateralRecord(t, None, "evidence")
                for t in ("tcb_info", "qe_identity", "pck_crl", "root_crl")
                if supplied.get(t, b"") is not None
            ),
        )

    def to_dcap_qvl_json(self) -> str:
        """The same collateral as a dcap-qvl ``QuoteCollateralV3`` document (pairs written as they are)."""
        crls = {
            "pck_crl_issuer_chain": (self.pck_crl_issuer_chain or b"").decode(),
            "root_ca_crl": self.root_crl.hex() if self.root_crl is not None else None,
            "pck_crl": self.pck_crl.hex() if self.pck_crl is not None else None,
        }
        doc = {
            **{k: v for k, v in crls.items() if v is not None},
            "tcb_info_issuer_chain": (self.tcb_info_issuer_chain or b"").decode(),
            "tcb_info": self.tcb_info.signed.decode("utf-8"),
            "tcb_info_signature": self.tcb_info.signature.hex(),
            "qe_identity_issuer_chain": (self.qe_identity_issuer_chain or b"").decode(),
            "qe_identity": self.qe_identity.signed.decode("utf-8"),
            "qe_identity_signature": self.qe_identity.signature.hex(),
        }
        return json.dumps(doc, indent=2)


DCAP_QVL_MEMBERS = frozenset(
    {
        "tcb_info_issuer_chain",
        "tcb_info",
        "tcb_info_signature",
        "qe_identity_issuer_chain",
        "qe_identity",
        "qe_identity_signature",
    }
)
# Revocation data: present in dcap-qvl documents, optional here (absent is usable only with revocation = skip).
DCAP_QVL_CRLS = frozenset({"pck_crl_issuer_chain", "root_ca_crl", "pck_crl"})
# Newer dcap-qvl releases may add the PCK chain; it is redundant with the quote's own and ignored.
DCAP_QVL_OPTIONAL = DCAP_QVL_CRLS | frozenset({"pck_certificate_chain"})


def looks_like_dcap_qvl_json(data: bytes) -> bool:
    """True when ``data`` is a JSON object with the dcap-qvl ``QuoteCollateralV3`` members (by content)."""
    head = data.lstrip()[:1]
    if head != b"{" or b'"tcb_info_signature"' not in data:
        return False
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(doc, dict) and "tcb_info" in doc and "qe_identity" in doc


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
    """Per-object hooks: ``expires`` (end of validity from the bytes) and ``validate`` (raises).

    ``validate`` receives the body and the issuer chain the origin sent with it (None when it sent none).
    """

    expires: Callable[[bytes], datetime | None]
    validate: Callable[[bytes, bytes | None], None]
    chained: bool = False  # True: the object is useless without its issuer chain


def _unchained(validate: Callable[[bytes, bytes | None], None]) -> Callable[[bytes], None]:
    return lambda body: validate(body, None)


_BUILT: dict[tuple[int, ...], tuple[tuple[CachedObject, ...], TdxCollateral]] = {}
_BUILT_LOCK = threading.Lock()


def fetch_collateral(
    ctx: VerifyContext,
    urls: CollateralUrls,
    checks: dict[str, Checks],
    *,
    crls: bool = True,
) -> TdxCollateral:
    """Fetch the four collateral objects through the collateral cache (stale only within the grace).

    The PCS bodies are split into (signed bytes, signature) pairs here, once; the issuer chains come
    from the stored response headers. ``crls=False`` (``revocation = skip``) fetches only TCB info and
    QE identity: the CRLs are neither asked for nor required.
    """
    grace = timedelta(seconds=max(0, ctx.settings.collateral_stale_grace_seconds))
    wanted = [("tcb_info", urls.tcb_info), ("qe_identity", urls.qe_identity)]
    if crls:
        wanted += [("pck_crl", urls.pck_crl), ("root_crl", urls.root_crl)]
    objects = []
    for kind, url in wanted:
        check = checks[kind]
        objects.append(
            ctx.collateral.get(
                url,
                now=ctx.now,
                expires=check.expires,
                validate=_unchained(check.validate),
                stale_grace=grace,
                collateral_type=_STORE_TYPES[kind],
                validate_chained=check.validate if check.chained else None,
            )
        )
    # The cache hands back the same objects while they stay cached: build the collateral from them once.
    # Keyed by identity, checked on a hit (the entry holds the objects, so an id is not reused meanwhile).
    key = tuple(id(o) for o in objects)
    with _BUILT_LOCK:
        built = _BUILT.get(key)
    if built is not None and all(a is b for a, b in zip(built[0], objects, strict=True)):
        return built[1]
    tcb_info, qe_identity = objects[:2]
    pck_crl, root_crl = objects[2:] if crls else (None, None)
    records = tuple(
        CollateralRecord(kind, obj.url, obj.source, obj.stale) for (kind, _), obj in zip(wanted, objects, strict=True)
    )
    collateral = TdxCollateral.from_pcs_bodies(
        tcb_info.body,
        qe_identity.body,
        pck_crl.body if pck_crl else None,
        root_crl.body if root_crl else None,
        tcb_info_issuer_chain=tcb_info.issuer_chain,
        qe_identity_issuer_chain=qe_identity.issuer_chain,
        pck_crl_issuer_chain=pck_crl.issuer_chain if pck_crl else None,
        records=records,
    )
    with _BUILT_LOCK:
        _BUILT[key] = (tuple(objects), collateral)
        while len(_BUILT) > 64:
            _BUILT.pop(next(iter(_BUILT)))
    return collateral


def bundled_collateral(ctx: VerifyContext, fmspc: bytes, ca: str) -> TdxCollateral | None:
    """The bundle's collateral for this FMSPC and PCK CA (a dcap-qvl document), or None without a bundle entry.

    It is verified downstream exactly like fetched collateral; its records say ``source: "bundle"``.
    """
    bundle = getattr(ctx.collateral, "bundle", None)
    if bundle is None:
        return None
    found = bundle.tdx(fmspc.hex().upper(), ca)
    if found is None:
        return None
    data, entry = found
    collateral = TdxCollateral.from_dcap_qvl_json(data)
    source = entry.source or None
    return dataclasses.replace(
        collateral,
        records=tuple(
            CollateralRecord(t, source, "bundle") for t in ("tcb_info", "qe_identity", "pck_crl", "root_crl")
        ),
    )
