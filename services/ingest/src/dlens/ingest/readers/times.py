"""Decode CAMS time axes: legacy ``units = "hours"`` offsets from the date in the time long_name or the
FORECAST/ANALYSIS attribute, or CF ``"<unit> since <date>"`` datetimes (new ADS, reanalyses)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .errors import Problem

_UNIT_HOURS = {"hours": 1.0, "hour": 1.0, "h": 1.0, "hrs": 1.0, "days": 24.0, "day": 24.0, "d": 24.0,
               "minutes": 1 / 60, "minute": 1 / 60, "min": 1 / 60, "seconds": 1 / 3600, "second": 1 / 3600,
               "s": 1 / 3600}  # fmt: skip
_PERIOD = re.compile(r"(\d{8})(?:\s*-\s*(\d{8}))?\s*\+\s*\[\s*(-?\d+)\s*H\s*_\s*(-?\d+)\s*H\s*\]", re.I)
_FROM_DATE = re.compile(r"\b(FORECAST|ANALYSIS)\s+time\s+from\s+(\d{8})", re.I)


@dataclass(frozen=True)
class Period:
    """``"Europe, 20200101+[0H_96H]"``: first and last date, first and last hour."""

    first: pd.Timestamp
    last: pd.Timestamp
    h0: int
    h1: int
    text: str


def parse_period(text: str) -> Period:
    m = _PERIOD.search(text)
    if not m:
        raise Problem(f"cannot read the period {text!r} (expected e.g. 'Europe, 20200101+[0H_96H]')")
    first = _date(m.group(1))
    last = _date(m.group(2)) if m.group(2) else first
    return Period(first, last, int(m.group(3)), int(m.group(4)), text.strip())


def date_from_long_name(long_name: str) -> pd.Timestamp | None:
    m = _FROM_DATE.search(long_name or "")
    return _date(m.group(2)) if m else None


def _date(text: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(f"{text[:4]}-{text[4:6]}-{text[6:8]}")
    except ValueError:
        raise Problem(f"invalid date {text!r} in the attributes") from None


def decode(values: np.ndarray, units: str, what: str) -> tuple[str, np.ndarray]:
    """("offset", hours float64) or ("datetime", datetime64[ns]) for raw numeric time values."""
    vals = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(vals)):
        raise Problem(f"{what} has missing values")
    u = (units or "").strip()
    if not u:
        raise Problem(f"{what} has no units")
    if " since " in u:
        unit, ref = u.split(" since ", 1)
        factor = _UNIT_HOURS.get(unit.strip().lower())
        if factor is None:
            raise Problem(f"{what} has unknown units {u!r}")
        try:
            ref_ts = pd.Timestamp(ref.strip().replace("UTC", "").strip())
        except ValueError:
            raise Problem(f"{what} has an unreadable reference date in {u!r}") from None
        if ref_ts.tzinfo is not None:
            ref_ts = ref_ts.tz_convert("UTC").tz_localize(None)
        ns = np.round(vals * factor * 3600e9).astype("int64")
        return "datetime", (ref_ts.to_datetime64().astype("datetime64[ns]") + ns.astype("timedelta64[ns]"))
    factor = _UNIT_HOURS.get(u.lower())
    if factor is None:
        raise Problem(f"{what} has unknown units {u!r}")
    return "offset", vals * factor


def reference_of(units: str) -> pd.Timestamp | None:
    """The reference date of CF ``"... since <date>"`` units."""
    if " since " not in (units or ""):
        return None
    try:
        return pd.Timestamp(units.split(" since ", 1)[1].strip().replace("UTC", "").strip())
    except ValueError:
        return None


def whole_hours(hours: np.ndarray, what: str) -> np.ndarray:
    rounded = np.round(hours)
    if np.any(np.abs(hours - rounded) > 1e-6):
        bad = hours[np.abs(hours - rounded) > 1e-6][0]
        raise Problem(f"{what} {bad:g} h is not a whole hour")
    return rounded.astype(np.int64)


def check_unique(stamps: np.ndarray, what: str, fmt=str) -> None:
    uniq, counts = np.unique(stamps, return_counts=True)
    if np.any(counts > 1):
        dup = uniq[counts > 1]
        shown = ", ".join(fmt(d) for d in dup[:3]) + (" …" if dup.size > 3 else "")
        raise Problem(f"duplicated {what}: {shown}")


def iso(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y-%m-%dT%H:%M")
