"""TCB currency: the newest TCB each vendor publishes, and since when (docs/collateral.md "TCB currency").

Operators should learn of a TCB recovery from a signal, not from rejected workloads. The collateral refresher
(:func:`attestation_broker.trust.refresh.refresh_store`) hands every Intel TCB info and every AMD VCEK in the
shared store to :class:`TcbCurrency`, which records per scope:

* Intel, scope ``tdx:<FMSPC>`` (and ``sgx:<FMSPC>``): the highest ``tcbEvaluationDataNumber`` seen, with
  the ``issueDate`` of the TCB info that first carried it (Intel PCS API v4, "TCB Info V3");
* AMD, scope ``<product>`` (Milan, Genoa, Turin): the newest TCB (bootloader, TEE, SNP, microcode and, on
  Turin, FMC SPLs) for which AMD KDS has issued a VCEK that this deployment fetched (AMD KDS spec #57230).

A change is logged as one structured event that is also a CloudWatch Embedded Metric Format record
(metric ``TcbCurrencyChange``, dimensions ``Vendor`` and ``Scope``), and kept in the shared store under
``currency/tcb.json``, so every broker instance and the policy engine see the same history.

For the policy engine (TCB-recovery grace period) the seam is :class:`TcbCurrencyView`:
``current(vendor, scope)`` returns the current level and **when it first appeared** (``since``), or None.
A policy can then accept a platform one level behind while ``now - since < grace``.

The refresher reads bodies it has only structurally validated; verifiers still verify every byte they use,
so the currency record is an operational signal and an input to grace periods, never a verification result.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from attestation_broker.trust.cache import BlobStore

CURRENCY_KEY = "currency/tcb.json"
METRIC_NAMESPACE = "AttestationBroker"
_log = logging.getLogger("attestation_broker.collateral")


@dataclass(frozen=True)
class TcbLevel:
    """The current level of one scope and when this deployment first saw it published."""

    vendor: str  # intel | amd
    scope: str  # "tdx:<FMSPC>" | "sgx:<FMSPC>" | "<AMD product>"
    level: tuple[int, ...]  # Intel: (tcbEvaluationDataNumber,); AMD: (fmc, bootloader, tee, snp, microcode)
    since: datetime  # first time this level was observed
    published: datetime | None = None  # Intel: issueDate of the first TCB info with this number

    def as_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "scope": self.scope,
            "level": list(self.level),
            "since": self.since.isoformat(),
            "published": self.published.isoformat() if self.published else None,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TcbLevel:
        published = doc.get("published")
        return cls(
            vendor=str(doc["vendor"]),
            scope=str(doc["scope"]),
            level=tuple(int(x) for x in doc["level"]),
            since=datetime.fromisoformat(str(doc["since"])),
            published=datetime.fromisoformat(str(published)) if published else None,
        )


class TcbCurrencyView(Protocol):
    """What the policy engine needs for a TCB-recovery grace period (inject a :class:`TcbCurrency`)."""

    def current(self, vendor: str, scope: str) -> TcbLevel | None: ...


def emit_stdout(record: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(record, sort_keys=True, separators=(",", ":")) + "\n")
    sys.stdout.flush()


class TcbCurrency:
    """The recorded current TCB per vendor and scope; persisted in the shared store when there is one."""

    def __init__(
        self, store: BlobStore | None = None, *, emit: Callable[[Mapping[str, Any]], None] = emit_stdout
    ) -> None:
        self._store = store
        self._emit = emit
        self._lock = threading.Lock()
        self._levels: dict[tuple[str, str], TcbLevel] = {}
        self.changes: list[tuple[TcbLevel | None, TcbLevel]] = []
        self._load()

    def _load(self) -> None:
        if self._store is None:
            return
        try:
            raw = self._store.get(CURRENCY_KEY)
            doc = json.loads(raw) if raw else {"levels": []}
            for item in doc.get("levels", []):
                level = TcbLevel.from_dict(item)
                self._levels[(level.vendor, level.scope)] = level
        except Exception:  # noqa: BLE001 - a damaged record restarts the history; it never blocks refreshes
            _log.warning("TCB currency record unreadable; starting a new one")

    def save(self) -> None:
        if self._store is None:
            return
        with self._lock:
            doc = {"levels": [lv.as_dict() for lv in sorted(self._levels.values(), key=lambda x: (x.vendor, x.scope))]}
        self._store.put(CURRENCY_KEY, json.dumps(doc, indent=1).encode())

    # --- the view the policy engine uses --------------------------------------------------------------

    def current(self, vendor: str, scope: str) -> TcbLevel | None:
        with self._lock:
            return self._levels.get((vendor, scope))

    def all(self) -> list[TcbLevel]:
        with self._lock:
            return sorted(self._levels.values(), key=lambda x: (x.vendor, x.scope))

    # --- observations -----------------------------------------------------------------------------

    def observe(
        self, vendor: str, scope: str, level: tuple[int, ...], now: datetime, published: datetime | None = None
    ) -> TcbLevel | None:
        """Record ``level`` for ``scope``; returns the new :class:`TcbLevel` when it is newer than the current."""
        with self._lock:
            previous = self._levels.get((vendor, scope))
            if previous is not None and level <= previous.level:
                return None
            current = TcbLevel(vendor, scope, level, now, published)
            self._levels[(vendor, scope)] = current
            self.changes.append((previous, current))
        self._announce(previous, current, now)
        return current

    def observe_intel_tcb_info(self, body: bytes, now: datetime) -> TcbLevel | None:
        """A PCS TCB info body (``{"tcbInfo": {...}, "signature": ...}``); malformed bodies are ignored."""
        try:
            info = json.loads(body)["tcbInfo"]
            scope = f"{'tdx' if info.get('id') == 'TDX' else 'sgx'}:{str(info['fmspc']).upper()}"
            number = int(info["tcbEvaluationDataNumber"])
            published = datetime.fromisoformat(str(info["issueDate"]).replace("Z", "+00:00"))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        return self.observe("intel", scope, (number,), now, published)

    def observe_amd_vcek(self, body: bytes, now: datetime) -> TcbLevel | None:
        """A VCEK (DER): its product and TCB SPL extensions; anything else is ignored."""
        from attestation_broker.errors import BrokerError
        from attestation_broker.evidence.snp.certs import leaf_info

        try:
            info = leaf_info(body)
        except BrokerError:
            return None
        if info.product is None:
            return None
        level = (info.fmc or 0, info.bootloader, info.tee, info.snp, info.microcode)
        return self.observe("amd", info.product, level, now)

    def _announce(self, previous: TcbLevel | None, current: TcbLevel, now: datetime) -> None:
        name = "tcb_evaluation_data_number" if current.vendor == "intel" else "tcb"
        record = {
            "event": "tcb_currency_changed",
            "vendor": current.vendor,
            "scope": current.scope,
            name: list(current.level),
            "previous": list(previous.level) if previous else None,
            "previous_since": previous.since.isoformat() if previous else None,
            "published": current.published.isoformat() if current.published else None,
            # CloudWatch Embedded Metric Format: the same line is the metric.
            "_aws": {
                "Timestamp": int(now.timestamp() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": METRIC_NAMESPACE,
                        "Dimensions": [["Vendor", "Scope"]],
                        "Metrics": [{"Name": "TcbCurrencyChange", "Unit": "Count"}],
                    }
                ],
            },
            "Vendor": current.vendor,
            "Scope": current.scope,
            "TcbCurrencyChange": 1,
        }
        self._emit(record)
