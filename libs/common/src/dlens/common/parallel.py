"""Fan work units out over Ray tasks, with a progress bar, committing each result as it arrives."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import ray
from tqdm import tqdm

from dlens.common.config import get_settings
from dlens.common.logging import get_logger
from dlens.common.store import unreachable

log = get_logger(__name__)

#: Seconds `fan_out` waits for the tasks it cancels to end, once the store is unreachable.
_ABANDON_S = 5.0


@dataclass
class FanOutReport:
    """What a fan-out did: units done, skipped and failed (with one-line reasons)."""

    done: int = 0
    failed: list[str] = field(default_factory=list)


def ensure_ray(dashboard: bool = False) -> bool:
    """Connect to RAY_ADDRESS / DLENS_RAY_ADDRESS if set, else start a small local Ray; True when it
    started that local Ray (its caller may then shut it down, with everything running on it).

    `dashboard` starts the local Ray's dashboard too (about 6 s more on 2 cores): Ray Train needs its
    State API, the fan-outs and Serve do not."""
    if ray.is_initialized():
        return False
    # Ray 2.60 turns token authentication on for every new cluster and warns at each start; the warning
    # says nothing a user must act on (docs/deploy.md covers tokens), so keep it out of every CLI's output.
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    address = get_settings().ray_address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    else:
        # The dashboard (on loopback) shows jobs and runs, and serves the State API that Ray Train's
        # placement-group cleaner needs: without it, a finished run's workers' CPUs are never freed.
        context = ray.init(
            address="local",  # a new local Ray, never one a `ray start` left on this machine
            include_dashboard=dashboard, dashboard_host="127.0.0.1",
            log_to_driver=False, logging_level="WARNING", object_store_memory=256 * 1024**2,
        )  # fmt: skip
        if dashboard:
            log.info("ray dashboard: http://%s", context.dashboard_url)
    log.info("ray: %s CPUs available", ray.cluster_resources().get("CPU", 0))
    return not address


@dataclass(frozen=True)
class Unit:
    """One piece of work for a Ray task: `function(*args)`, named in progress and error lines."""

    label: str
    function: Callable[..., Any]
    args: tuple


def _call(function: Callable[..., Any], args: tuple) -> Any:
    """The one Ray entry point: runs a unit's function on its arguments."""
    return function(*args)


def fan_out(units: Sequence[Unit], on_result: Callable[[Any], None], desc: str) -> FanOutReport:
    """Run each unit as a Ray task; call `on_result` in the driver with its result as each ends.

    A unit that raises is reported (not retried: writes are idempotent, a re-run redoes it);
    a worker that dies is retried by Ray. A unit (or its `on_result`) that could not reach the S3 endpoint
    cancels the rest and raises `StoreUnreachableError`: every other unit would wait out the same retries.
    """
    report = FanOutReport()
    if not units:
        return report
    ensure_ray()
    remote = ray.remote(num_cpus=1, max_retries=2, retry_exceptions=False)(_call)
    # A bounded window of tasks in flight keeps arguments and results within the object store,
    # however many units a long period has.
    in_flight = max(2, 2 * int(ray.cluster_resources().get("CPU", 1)))
    queue = iter(units)
    pending: dict = {}

    def submit() -> None:
        unit = next(queue, None)
        if unit is not None:
            pending[remote.remote(unit.function, unit.args)] = unit

    for _ in range(in_flight):
        submit()
    with tqdm(total=len(units), desc=desc, unit="unit", disable=not get_settings().progress) as bar:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            unit = pending.pop(ready[0])
            submit()
            try:
                on_result(ray.get(ready[0]))
                report.done += 1
            except Exception as exc:  # a failed unit must not stop the others, but an unreachable store does
                cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) and exc.cause else exc
                if (lost := unreachable(cause)) is not None:
                    _abandon(list(pending))
                    if lost is exc:
                        raise
                    raise lost from exc
                report.failed.append(f"{unit.label}: {str(cause).strip().splitlines()[-1]}")
            bar.update()
    return report


def _abandon(refs: list) -> None:
    """Cancel the tasks of `refs` and take the outcome of those that end within `_ABANDON_S`, so that Ray
    reports none of their errors as unhandled."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref)
    ended, _ = ray.wait(refs, num_returns=len(refs), timeout=_ABANDON_S)
    for ref in ended:
        with contextlib.suppress(Exception):
            ray.get(ref)
