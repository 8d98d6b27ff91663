"""Per-API-key rate limits: token buckets in process memory, and their IETF headers.

Each key has one bucket per policy (`write` for POST/DELETE, `read` for GET). A bucket
holds up to `burst` tokens and refills at `per_s`; a request takes one token or is
refused with 429. The buckets live in the API process: with N processes behind a
balancer a key can get up to N times the limit (docs/security.md). The headers follow
draft-ietf-httpapi-ratelimit-headers: `RateLimit-Policy: "write";q=20;w=2` and
`RateLimit: "write";r=13;t=1`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from driftline.settings import Settings

#: Buckets kept before idle, full ones are forgotten (a full bucket is a fresh one).
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class RatePolicy:
    """A quota: `burst` requests at once, refilled at `per_s` per second."""

    name: str
    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate policy needs per_s > 0 and burst >= 1")

    @property
    def window_s(self) -> int:
        """Seconds an empty bucket takes to refill: the policy's window."""
        return max(1, math.ceil(self.burst / self.per_s))

    def header(self) -> str:
        return f'"{self.name}";q={self.burst};w={self.window_s}'


@dataclass(frozen=True)
class RateDecision:
    """The outcome of one request against its key's bucket."""

    policy: RatePolicy
    allowed: bool
    remaining: int
    reset_s: int
    retry_after_s: int

    def headers(self) -> dict[str, str]:
        headers = {
            "RateLimit-Policy": self.policy.header(),
            "RateLimit": f'"{self.policy.name}";r={self.remaining};t={self.reset_s}',
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.retry_after_s)
        return headers


@dataclass
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class RateLimiter:
    """Token buckets per (key, policy)."""

    policies: dict[str, RatePolicy]
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[Hashable, str], _Bucket] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(
            {
                "write": RatePolicy(
                    "write", settings.rate_limit_write_per_s, settings.rate_limit_write_burst
                ),
                "read": RatePolicy(
                    "read", settings.rate_limit_read_per_s, settings.rate_limit_read_burst
                ),
            }
        )

    def take(self, key: Hashable, policy_name: str) -> RateDecision:
        """Spend one token of `key`'s bucket under `policy_name`, if there is one."""
        policy = self.policies[policy_name]
        now = self.clock()
        bucket = self._buckets.get((key, policy_name))
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[(key, policy_name)] = _Bucket(float(policy.burst), now)
        bucket.tokens = min(policy.burst, bucket.tokens + (now - bucket.stamp) * policy.per_s)
        bucket.stamp = now
        allowed = bucket.tokens >= 1
        if allowed:
            bucket.tokens -= 1
        return RateDecision(
            policy=policy,
            allowed=allowed,
            remaining=int(bucket.tokens),
            reset_s=math.ceil((policy.burst - bucket.tokens) / policy.per_s),
            retry_after_s=0 if allowed else max(1, math.ceil((1 - bucket.tokens) / policy.per_s)),
        )

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < MAX_BUCKETS:
            return
        for bucket_key, bucket in list(self._buckets.items()):
            policy = self.policies[bucket_key[1]]
            if bucket.tokens + (now - bucket.stamp) * policy.per_s >= policy.burst:
                del self._buckets[bucket_key]
