"""bench/synthetic.py's verdicts: a missed skill ratio says whether its sampling interval reaches the band."""

from __future__ import annotations

from pathlib import Path

from dlens.testing.scripts import load_script

REPO = Path(__file__).resolve().parents[1]


def test_a_miss_is_clear_only_when_its_interval_lies_wholly_outside_the_band():
    bench = load_script(REPO / "bench" / "synthetic.py")
    band = ("range", 0.8, 0.97)
    inside = bench.row("skill", "ratio", None, 0.9, band, (0.85, 0.95))
    clear = bench.row("skill", "ratio", None, 0.7, band, (0.65, 0.78))
    within = bench.row("skill", "ratio", None, 0.75, band, (0.70, 0.83))
    above = bench.row("skill", "ratio", None, 0.99, band, (0.975, 1.02))
    assert inside["verdict"] == "PASS" and "clear" not in inside
    assert (clear["verdict"], clear["clear"]) == ("MISS", True)
    assert (within["verdict"], within["clear"]) == ("MISS", False)
    assert above["clear"] is True
    assert bench.cell(clear).startswith("0.7 **MISS**") and bench.cell(within).startswith("0.75 *miss*")
    no_interval = bench.row("stations", "rmse", 17.9, 25.4, ("ratio", 1.3))
    assert bench.miss_text(no_interval) == "MISS" and "clear" not in no_interval
    assert bench.pass_count([inside, clear, within, no_interval]) == "1/4 (1 of the misses within sampling)"
