"""The fixed latency buckets behind p50/p95 and the Prometheus histogram. Pure.

Exact percentiles over millions of rows are too slow for /stats, so every successful attempt is
counted in one of these buckets and percentiles are read back from the counts. The bounds follow
1, 1.1, 1.2, ... 9 x 10^k ms: adjacent bounds differ by at most 12.5%, so a percentile read from the
buckets is within 12.5% of the true value (usually much closer: it is interpolated inside its
bucket and clamped to the observed min and max). Bounds are never changed in place: doing so
would corrupt the stored counts; a new set needs a schema migration.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence

_MANTISSAS = (
    1.0, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.8, 2.0, 2.2, 2.4, 2.5, 2.7,
    3.0, 3.3, 3.6, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0,
)  # fmt: skip

# Upper bounds in ms (a bucket holds latency <= its bound), 1 ms to 1000 s. Bucket
# len(BOUNDS_MS) holds everything slower.
BOUNDS_MS: tuple[float, ...] = (
    *(round(m * 10**e, 6) for e in range(6) for m in _MANTISSAS),
    1_000_000.0,
)
OVERFLOW = len(BOUNDS_MS)

# The coarser buckets /metrics exposes (seconds); each is one of BOUNDS_MS, so they are exact.
PROMETHEUS_BOUNDS_S = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip


def bucket_of(latency_ms: float) -> int:
    return bisect_left(BOUNDS_MS, latency_ms)


def quantile(
    counts: Mapping[int, int], q: float, low: float | None, high: float | None
) -> float | None:
    """The q-quantile (0..1) read from bucket counts, clamped to the observed [low, high]."""
    total = sum(counts.values())
    if total == 0 or low is None or high is None:
        return None
    rank = q * total
    seen = 0
    for index in sorted(counts):
        count = counts[index]
        if count <= 0:
            continue
        if seen + count >= rank:
            lower = BOUNDS_MS[index - 1] if index > 0 else 0.0
            upper = BOUNDS_MS[index] if index < OVERFLOW else high
            estimate = lower + (upper - lower) * ((rank - seen) / count)
            return min(max(estimate, low), high)
        seen += count
    return high


def cumulative_seconds(counts: Mapping[int, int]) -> Sequence[tuple[float, int]]:
    """(le seconds, count at or below it) for each Prometheus bound."""
    ordered = sorted(counts.items())
    result = []
    for bound_s in PROMETHEUS_BOUNDS_S:
        limit = bucket_of(bound_s * 1000.0)
        result.append((bound_s, sum(c for i, c in ordered if i <= limit)))
    return result
