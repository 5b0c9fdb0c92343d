"""Store reads through an outage: a replica keeps what it read last (the registry, the run index) and answers
from it while the store does not answer; what it cannot answer gets a 503 saying why, at once, until the
store is tried again after a back-off."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Generic, TypeVar

from dlens.common.store import is_outage
from dlens.serve.problems import StoreUnavailable

LOG = logging.getLogger(__name__)
T = TypeVar("T")


class StoreHealth:
    """Whether the store answers. After a failed read it is not tried again for `retry_s` seconds: reads
    meanwhile fail at once (StoreUnavailable, a 503). The first failure and the recovery are logged."""

    def __init__(self, retry_s: float):
        self.retry_s = retry_s
        self.failure: str | None = None  # the kind of error of the last read, while it failed
        self._since: datetime | None = None
        self._retry_at = -math.inf

    def read(self, read: Callable[[], T]) -> T:
        """`read()`, a read of the store; StoreUnavailable while backing off or when it fails to reach it."""
        if self.failure is not None and time.monotonic() < self._retry_at:
            raise self.problem()
        try:
            value = read()
        except Exception as exc:
            if not is_outage(exc):
                raise
            self._failed(exc)
            raise self.problem() from exc
        if self.failure is not None:
            LOG.info("the store answers again (unreachable since %s)", f"{self._since:%H:%M:%S} UTC")
            self.failure = None
        return value

    def check(self) -> None:
        """StoreUnavailable when the last read failed."""
        if self.failure is not None:
            raise self.problem()

    def problem(self) -> StoreUnavailable:
        """The 503 of an unreachable store: the kind of error and since when, never its text (the endpoint,
        the store's path: those go to the log)."""
        return StoreUnavailable(
            f"the store is unreachable ({self.failure} since {self._since:%H:%M:%S} UTC); it is tried again "
            f"every {self.retry_s:g} s",
            retry_after_s=self.retry_s,
        )

    def _failed(self, exc: Exception) -> None:
        if self.failure is None:
            self._since = datetime.now(UTC)
            LOG.warning("the store is unreachable; retried every %g s", self.retry_s, exc_info=exc)
        self.failure = type(exc).__name__
        self._retry_at = time.monotonic() + self.retry_s


class LastGood(Generic[T]):
    """The result of a store read, read again once `max_age_s` old; while the store fails, the last good
    result (StoreUnavailable where there is none). One thread reads at a time: the others get the last good
    result meanwhile, or wait for the read where there is none."""

    def __init__(self, read: Callable[[], T], health: StoreHealth):
        self._read, self._health = read, health
        self.value: T | None = None
        self._at = -math.inf
        self._lock = threading.Lock()

    @property
    def age(self) -> float:
        """Seconds since the last good read (infinite before the first)."""
        return time.monotonic() - self._at

    def get(self, max_age_s: float) -> T:
        if self.value is not None and self.age <= max_age_s:
            return self.value
        if not self._lock.acquire(blocking=self.value is None):
            return self.value  # another thread is reading it
        try:
            if self.value is None or self.age > max_age_s:  # not read while this thread waited
                self._refresh()
        finally:
            self._lock.release()
        return self.value

    def _refresh(self) -> None:
        try:
            value = self._health.read(self._read)
        except StoreUnavailable:
            if self.value is None:
                raise
            return
        self.value, self._at = value, time.monotonic()
