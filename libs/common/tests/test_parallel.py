"""`fan_out`: a failed unit is reported and the others go on, but a store that cannot be reached stops it."""

from __future__ import annotations

import time

import pytest
from botocore.exceptions import EndpointConnectionError

from dlens.common.parallel import Unit, fan_out
from dlens.common.store import StoreUnreachableError


def _unit(kind: str) -> str:
    if kind == "bad":
        raise ValueError("bad input")
    if kind == "lost":
        raise EndpointConnectionError(endpoint_url="http://127.0.0.1:1/bucket/key")
    if kind == "slow":
        for _ in range(300):  # 30 s of Python work, which a cancellation interrupts
            time.sleep(0.1)
    return kind


def test_an_unreachable_store_stops_the_fan_out_and_a_bad_unit_does_not(ray_cluster):
    done: list = []
    report = fan_out([Unit("bad", _unit, ("bad",))], done.append, "t")
    assert report.done == 0 and report.failed == ["bad: bad input"]

    units = [Unit("lost", _unit, ("lost",)), *(Unit(f"slow {i}", _unit, ("slow",)) for i in range(4))]
    started = time.monotonic()
    with pytest.raises(StoreUnreachableError, match=r"store unreachable: .*Could not connect"):
        fan_out(units, done.append, "t")
    assert done == []
    # the slow units were cancelled, not waited for, and their CPUs are free again
    assert fan_out([Unit("quick", _unit, ("quick",))] * 2, done.append, "t").done == 2
    assert time.monotonic() - started < 20 and done == ["quick", "quick"]
