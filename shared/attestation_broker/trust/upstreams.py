"""Several collateral upstreams per vendor, tried in order, with circuit breaking and back-off (docs/collateral.md).

Verifiers build collateral URLs from the *primary* upstream (``intel_pcs_url`` / ``intel_root_crl_url`` for
Intel, ``amd_kds_url`` for AMD); those URLs are also the cache keys. :class:`UpstreamFetcher` is the
:class:`~attestation_broker.trust.fetch.Fetcher` that turns one such URL into a request to each configured
upstream of that vendor in turn:

* Intel: the primary (Intel PCS, or whatever ``intel_pcs_url`` names) then every ``intel_upstreams`` entry,
  ``pcs:URL`` (the PCS v4 URL space) or ``pccs:URL`` (Intel's PCCS API, as PCCS, dstack and cloud PCCS mirrors
  serve it: the same ``/sgx|tdx/certification/v4/...`` paths, and the root CA CRL at
  ``/sgx/certification/v4/rootcacrl`` instead of Intel's certificate host);
* AMD: ``amd_kds_url`` then every ``amd_upstreams`` entry (KDS mirrors and caching proxies: same paths).

Rules, per upstream: a 429 or 503 with ``Retry-After`` closes it for that long; ``upstream_failure_threshold``
consecutive failures open its circuit for ``upstream_cooldown_seconds`` (then one trial request). A 404 moves
on to the next upstream (a mirror may lack an object) and is COLLATERAL_NOT_FOUND only when every upstream
that answered said 404. When a whole round fails, the fetcher backs off (exponential, full jitter) and tries
another round, never past the per-fetch deadline ``collateral_deadline_seconds``; each attempt's timeout is
cut to what is left of it. Nothing here decides whether collateral is good: callers verify every byte.
Time, sleep and randomness are injected so tests are fast and deterministic.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from attestation_broker.config import Settings
from attestation_broker.errors import COLLATERAL_NOT_FOUND, COLLATERAL_UNAVAILABLE, CONFIG_INVALID, BrokerError
from attestation_broker.trust.fetch import Fetcher, FetchResponse, HttpAnswer, retry_after_seconds

STYLES = {"intel": ("pcs", "pccs"), "amd": ("kds",)}
PCCS_ROOT_CRL_PATH = "/sgx/certification/v4/rootcacrl"


@dataclass(frozen=True)
class Upstream:
    vendor: str  # intel | amd
    style: str  # pcs | pccs | kds
    base: str  # no trailing slash

    @property
    def name(self) -> str:
        return f"{self.style}:{self.base}"


def parse_upstream(vendor: str, spec: str) -> Upstream:
    """``URL`` or ``STYLE:URL`` (``pcs:``/``pccs:`` for Intel, ``kds:`` for AMD); the default style is the first."""
    spec = spec.strip()
    style, sep, rest = spec.partition(":")
    if sep and style in STYLES[vendor]:
        url = rest
    else:
        style, url = STYLES[vendor][0], spec
    if not url.startswith(("https://", "http://")):
        raise CONFIG_INVALID(f"{vendor} upstream {spec[:100]!r} is not an http(s) URL")
    return Upstream(vendor, style, url.rstrip("/"))


def upstreams_from_settings(settings: Settings) -> dict[str, tuple[Upstream, ...]]:
    intel = [Upstream("intel", "pcs", settings.intel_pcs_url.rstrip("/"))]
    intel += [parse_upstream("intel", s) for s in settings.intel_upstreams]
    amd = [Upstream("amd", "kds", settings.amd_kds_url.rstrip("/"))]
    amd += [parse_upstream("amd", s) for s in settings.amd_upstreams]
    return {"intel": tuple(intel), "amd": tuple(amd)}


@dataclass
class UpstreamState:
    """Circuit-breaker state of one upstream (monotonic clock seconds)."""

    failures: int = 0  # consecutive
    closed_until: float = 0.0  # not tried before this instant (Retry-After or an open circuit)
    attempts: int = 0
    successes: int = 0
    throttled: int = 0  # 429 answers
    last_error: str = ""

    def as_dict(self, now: float) -> dict[str, object]:
        return {
            "attempts": self.attempts,
            "successes": self.successes,
            "throttled": self.throttled,
            "consecutive_failures": self.failures,
            "available_in_seconds": max(0.0, round(self.closed_until - now, 3)),
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class RetryPolicy:
    deadline: float = 10.0  # seconds one fetch may take over all upstreams and rounds
    rounds: int = 3
    backoff: float = 0.25  # base of the exponential back-off between rounds
    max_backoff: float = 4.0
    failure_threshold: int = 3
    cooldown: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            deadline=max(0.1, settings.collateral_deadline_seconds),
            rounds=max(1, settings.upstream_rounds),
            backoff=max(0.0, settings.upstream_backoff_seconds),
            failure_threshold=max(1, settings.upstream_failure_threshold),
            cooldown=max(0.0, settings.upstream_cooldown_seconds),
        )


@dataclass
class _Attempt:
    not_found: int = 0
    failed: list[str] = field(default_factory=list)
    retry_after: float | None = None


class UpstreamFetcher:
    """A Fetcher over ordered upstreams per vendor; URLs of no configured vendor go straight to ``inner``."""

    def __init__(
        self,
        inner: Fetcher,
        upstreams: dict[str, tuple[Upstream, ...]],
        *,
        intel_root_crl_url: str,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.upstreams = upstreams
        self.intel_root_crl_url = intel_root_crl_url
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._lock = threading.Lock()
        self.states: dict[str, UpstreamState] = {u.name: UpstreamState() for ups in upstreams.values() for u in ups}

    @classmethod
    def from_settings(cls, inner: Fetcher, settings: Settings, **kwargs: object) -> UpstreamFetcher:
        return cls(
            inner,
            upstreams_from_settings(settings),
            intel_root_crl_url=settings.intel_root_crl_url,
            policy=RetryPolicy.from_settings(settings),
            **kwargs,  # type: ignore[arg-type]
        )

    # --- routing --------------------------------------------------------------------------------

    def routes(self, url: str) -> list[tuple[Upstream, str]]:
        """(upstream, concrete URL) in the order they are tried; [] for a URL of no configured vendor."""
        out: list[tuple[Upstream, str]] = []
        intel = self.upstreams.get("intel", ())
        if url == self.intel_root_crl_url and intel:
            # PCS does not serve the root CA CRL (Intel's certificate host does); a PCCS serves it itself.
            under_primary = url.startswith(intel[0].base + "/")
            for up in intel:
                if up.style == "pccs":
                    target = up.base + PCCS_ROOT_CRL_PATH
                elif under_primary:
                    target = up.base + url[len(intel[0].base) :]
                else:
                    target = url
                if target not in (t for _, t in out):
                    out.append((up, target))
            return out
        for ups in self.upstreams.values():
            primary = ups[0].base
            if url.startswith(primary + "/"):
                rest = url[len(primary) :]
                return [(up, up.base + rest) for up in ups]
        return out

    def status(self) -> dict[str, dict[str, object]]:
        """Per-upstream counters and breaker state (for health endpoints and logs)."""
        now = self._clock()
        with self._lock:
            return {name: state.as_dict(now) for name, state in self.states.items()}

    # --- fetching -------------------------------------------------------------------------------

    def _call(self, target: str, timeout: float) -> HttpAnswer:
        request = getattr(self.inner, "request", None)
        if callable(request):
            answer = request(target, timeout=timeout)
            assert isinstance(answer, HttpAnswer)
            return answer
        try:
            got = self.inner.get(target, timeout=timeout)
        except BrokerError as exc:
            if exc.code is COLLATERAL_NOT_FOUND:
                return HttpAnswer(target, 404, b"", {})
            raise
        return HttpAnswer(target, 200, got.body, got.headers)

    def _try(self, up: Upstream, target: str, timeout: float, attempt: _Attempt) -> FetchResponse | None:
        state = self.states.setdefault(up.name, UpstreamState())
        state.attempts += 1
        try:
            answer = self._call(target, timeout)
        except BrokerError as exc:
            self._failed(state, exc.detail or exc.code.name, None)
            attempt.failed.append(f"{up.name}: unreachable")
            return None
        if answer.status == 200:
            with self._lock:
                state.failures, state.closed_until, state.last_error = 0, 0.0, ""
                state.successes += 1
            return FetchResponse(url=target, body=answer.body, headers=answer.headers)
        if answer.status == 404:
            attempt.not_found += 1  # the upstream is healthy; it just lacks this object
            return None
        retry = retry_after_seconds(answer.headers.get("retry-after")) if answer.status in (429, 503) else None
        if answer.status == 429:
            state.throttled += 1
        self._failed(state, f"HTTP {answer.status}", retry)
        if retry is not None:
            attempt.retry_after = retry if attempt.retry_after is None else min(attempt.retry_after, retry)
        attempt.failed.append(f"{up.name}: HTTP {answer.status}")
        return None

    def _failed(self, state: UpstreamState, error: str, retry_after: float | None) -> None:
        now = self._clock()
        with self._lock:
            state.failures += 1
            state.last_error = error[:200]
            until = now + retry_after if retry_after is not None else 0.0
            if state.failures >= self.policy.failure_threshold:
                until = max(until, now + self.policy.cooldown)
            state.closed_until = max(state.closed_until, until)

    def get(self, url: str, *, timeout: float) -> FetchResponse:
        routes = self.routes(url)
        if not routes:
            return self.inner.get(url, timeout=timeout)
        start = self._clock()
        deadline = start + self.policy.deadline
        attempt = _Attempt()
        for round_no in range(self.policy.rounds):
            tried = 0
            for up, target in routes:
                now = self._clock()
                if now >= deadline:
                    break
                with self._lock:
                    closed = self.states.setdefault(up.name, UpstreamState()).closed_until > now
                if closed:
                    continue
                tried += 1
                got = self._try(up, target, min(timeout, deadline - now), attempt)
                if got is not None:
                    return FetchResponse(url=url, body=got.body, headers=got.headers)
            if attempt.not_found and not attempt.failed:
                break  # every upstream that answered says the object does not exist
            now = self._clock()
            if round_no + 1 >= self.policy.rounds or now >= deadline:
                break
            # Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"); never past the deadline.
            pause = self._rng.uniform(0, min(self.policy.max_backoff, self.policy.backoff * (2**round_no)))
            if tried == 0:
                # Everything is closed: wait for the first upstream to reopen, if that is before the deadline.
                with self._lock:
                    reopen = min(self.states[up.name].closed_until for up, _ in routes)
                pause = max(pause, reopen - now)
            if now + pause >= deadline:
                break
            self._sleep(pause)
        if attempt.not_found and not attempt.failed:
            raise COLLATERAL_NOT_FOUND(f"no upstream has {url} (HTTP 404)")
        summary = "; ".join(attempt.failed[-4:]) or "every upstream is backing off"
        retry = int(attempt.retry_after) if attempt.retry_after is not None else 30
        raise COLLATERAL_UNAVAILABLE(f"no upstream answered for {url} ({summary})", retry_after=max(1, retry))


def build_fetcher(settings: Settings, inner: Fetcher, **kwargs: object) -> Fetcher:
    """The production fetch stack: ``inner`` (HTTP) behind the configured upstreams (nothing when offline)."""
    if settings.offline:
        return inner
    return UpstreamFetcher.from_settings(inner, settings, **kwargs)
