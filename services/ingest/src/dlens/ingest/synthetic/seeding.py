"""Deterministic random streams and the hour clock shared by every part of the generator.

Every random draw comes from a generator seeded by ``(seed, purpose, keys...)`` through
:class:`numpy.random.SeedSequence`, so any day can be generated alone, in any order and process.
"""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta

import numpy as np

EPOCH = datetime(2000, 1, 1)


def rng(seed: int, purpose: str, *keys: int) -> np.random.Generator:
    """A random generator that depends only on the seed, a purpose name and integer keys."""
    words = [int(seed) % 2**32, zlib.crc32(purpose.encode())]
    words += [int(k) % 2**32 for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


def to_naive_utc(t: datetime | date) -> datetime:
    """A naive UTC datetime (aware datetimes are converted, dates are taken at 00 UTC)."""
    if not isinstance(t, datetime):
        return datetime(t.year, t.month, t.day)
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t


def hour_index(t: datetime | date) -> int:
    """Whole hours since 2000-01-01 00 UTC; `t` must lie on the hour."""
    t = to_naive_utc(t)
    delta = t - EPOCH
    if delta % timedelta(hours=1):
        raise ValueError(f"time {t.isoformat()} is not on the hour")
    return delta // timedelta(hours=1)


def run_index(run: datetime | date) -> int:
    """Day number (days since 2000-01-01) of a 00 UTC run."""
    h = hour_index(run)
    if h % 24:
        raise ValueError(f"run {to_naive_utc(run).isoformat()} is not a 00 UTC run")
    return h // 24


def check_lead(lead: int) -> int:
    lead = int(lead)
    if not 0 <= lead <= 96:
        raise ValueError(f"lead {lead} h outside 0..96")
    return lead


def day_of_year(hour: float) -> float:
    """Fractional day of year (1 = 1 January 00 UTC) of an hour index."""
    t = EPOCH + timedelta(hours=float(hour))
    return (t - datetime(t.year, 1, 1)).total_seconds() / 86400.0 + 1.0


def season(hour: float) -> float:
    """+1 in mid-July, -1 in mid-January: the annual cosine most seasonal cycles follow."""
    return float(np.cos(2.0 * np.pi * (day_of_year(hour) - 196.0) / 365.25))
