"""Daily aggregates a regulator verifies: the maximum daily 8-hour mean (MDA8) of ozone.

The EU definition (Directive 2008/50/EC, annex VII): 8-hour running means computed every hour, each
assigned to the day in which it ends; the day's maximum of those means. A forecast run at 00 UTC covers
day d of its forecast with the leads 24 d .. 24 d + 23, and a window ends at lead L when it spans the
leads L − 7 .. L; day 0 therefore has the 17 windows ending at leads 7 .. 23 (the hours before the run
are not forecast), the later days all 24. A window counts with at least 6 of its 8 hours, a day with at
least 75 % of the windows it can have (the directive's 75 % rules).
"""

from __future__ import annotations

from collections import deque

import numpy as np

#: Hours in a running mean, and the valid hours a mean or a day needs (the directive's 75 %).
HOURS = 8
MIN_HOURS = 6
MIN_WINDOW_SHARE = 0.75


class RunningMda8:
    """Maximum daily 8-hour means of stacked fields fed one hourly lead at a time, in increasing order.

    `add(lead, fields)` takes the fields of one lead (any shape, NaN where missing); `result()` is
    (days, *shape), NaN where a day has too few valid windows. Leads that are not hourly never complete a
    window, so a store with 3-hourly leads gives all NaN.
    """

    def __init__(self, days: int) -> None:
        self.days = days
        self._recent: deque[tuple[int, np.ndarray]] = deque(maxlen=HOURS)
        self._max: np.ndarray | None = None
        self._windows: np.ndarray | None = None  # valid windows per day and cell

    def add(self, lead: int, fields: np.ndarray) -> None:
        """Feed the fields valid at `lead` hours."""
        self._recent.append((lead, np.asarray(fields, dtype=np.float64)))
        day = lead // 24
        first = lead - HOURS + 1
        if day >= self.days or first < 0 or [k for k, _ in self._recent] != list(range(first, lead + 1)):
            return
        stack = np.stack([f for _, f in self._recent])
        count = np.isfinite(stack).sum(axis=0)
        with np.errstate(invalid="ignore"):
            mean = np.where(count >= MIN_HOURS, np.nansum(stack, axis=0) / np.maximum(count, 1), np.nan)
        if self._max is None:
            self._max = np.full((self.days, *mean.shape), np.nan)
            self._windows = np.zeros((self.days, *mean.shape), dtype=np.int64)
        self._max[day] = np.fmax(self._max[day], mean)
        self._windows[day] += np.isfinite(mean)

    def result(self) -> np.ndarray | None:
        """(days, *shape) MDA8; None when no window was complete."""
        if self._max is None:
            return None
        possible = np.array([24 - (HOURS - 1) if day == 0 else 24 for day in range(self.days)])
        enough = self._windows >= np.ceil(MIN_WINDOW_SHARE * possible).reshape(
            -1, *[1] * (self._max.ndim - 1)
        )
        return np.where(enough, self._max, np.nan)
