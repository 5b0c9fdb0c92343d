"""bench/predictors.py's rows, gains, Holm verdicts and targets, and bench/models.py's comparison, from evaluate
metrics made by hand."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from dlens.testing.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
BLOCKS = ("000-024", "025-048", "049-072", "073-096")
#: RMSE per product and block: the recent analysis helps on day one only; the meteo 4 % everywhere.
RMSE = {
    "dlens-m": (10.0, 10.0, 10.0, 10.0),
    "dlens-w": (9.6, 9.6, 9.6, 9.6),
    "dlens-a": (8.0, 10.0, 10.0, 10.0),
    "dlens-wa": (7.7, 9.6, 9.6, 9.6),
    "dlens-x": (7.7, 9.6, 9.7, 9.6),
    "median": (12.0, 12.0, 12.0, 12.0),
    "weighted": (11.0, 11.0, 11.0, 11.0),
    "weighted-regions": (11.5, 11.5, 11.5, 11.5),
    "mos": (9.0, 9.0, 9.0, 9.0),
    "emos": (9.5, 9.5, 9.5, 9.5),
    "persistence": (20.0, 20.0, 20.0, 20.0),
    "climatology": (15.0, 15.0, 15.0, 15.0),
}
PRODUCTS = {"members": "dlens-m", "meteo": "dlens-w", "analysis": "dlens-a", "meteo-analysis": "dlens-wa",
            "all": "dlens-x"}  # fmt: skip


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO / "bench"))  # it imports bench/skill.py's helpers, as when run as a script
    try:
        yield load_script(REPO / "bench" / "predictors.py")
    finally:
        sys.path.remove(str(REPO / "bench"))


def metrics(p_value: float) -> dict:
    continuous = [
        {"product": product, "species": "o3", "lead_block": block, "rmse": rmse[b], "region": "domain",
         "season": "all", "lead": None}
        for product, rmse in RMSE.items() for b, block in enumerate(BLOCKS)
    ]  # fmt: skip
    significance = [
        {"product": product, "species": "o3", "lead_block": block, "reference": reference, "p_value": p_value}
        for product in PRODUCTS.values() for block in BLOCKS for reference in ("mos", "dlens-m") if product != reference
    ]  # fmt: skip
    return {"continuous": continuous, "significance": significance}


def test_the_gains_verdicts_and_targets_of_an_ablation(bench):
    rows = bench.ablation_rows(metrics(0.001), PRODUCTS, ["o3"], "summer 2026")
    assert [r["strongest"] for r in rows] == ["mos"] * 4  # the lowest RMSE of the baselines
    day_one = rows[0]
    assert day_one["gain"]["analysis"] == pytest.approx(0.2) and day_one["gain"]["members"] == 0
    assert day_one["ratio_strongest"]["all"] == pytest.approx(7.7 / 9.0)
    bench.judge(rows)
    # significant everywhere (p 0.001 × 4 rows after Holm): better where its RMSE is lower, else worse
    assert [r["verdict_strongest"]["members"] for r in rows] == ["worse"] * 4
    assert [r["verdict_strongest"]["all"] for r in rows] == ["better", "worse", "worse", "worse"]
    assert [r["verdict_members"]["analysis"] for r in rows] == ["better", "worse", "worse", "worse"]
    assert "members" not in rows[0]["verdict_members"]
    result = bench.summary(rows)
    families = result["families"]
    assert families["meteo"]["mean_gain"] == pytest.approx(0.04)
    assert families["recent analysis"]["by_block"] == pytest.approx(dict(zip(BLOCKS, (0.2, 0, 0, 0))))
    assert families["zenith + statistics"]["by_block"]["049-072"] == pytest.approx(1 - 9.7 / 9.6)
    assert result["variants"]["all"]["better_than_strongest_rows_holm"] == 1
    assert result["targets"] == {
        "all_beats_strongest_everywhere_holm": False,
        "all_mean_ratio_strongest_met": False,  # (7.7 + 9.6 + 9.7 + 9.6) / 4 / 9 = 1.017
        "meteo_analysis_gain_met": True,  # (0.23 + 0.04 × 3) / 4 = 8.75 %
        "analysis_helps_most_on_day_one": True,
    }
    table = bench.markdown_table(rows)
    assert "| summer 2026 | o3 | 0–24 | 10.00 | 9.60 | 8.00 | **7.70** | **7.70** | mos 9.00 |" in table
    assert "+20.0% (better)" in table and "0.856 (better)" in table


def test_without_significance_every_verdict_is_not_significant(bench):
    rows = bench.ablation_rows(metrics(0.2), PRODUCTS, ["o3"], "winter 2026")
    bench.judge(rows)
    assert {v for r in rows for v in r["verdict_strongest"].values()} == {"n.s."}
    assert bench.summary(rows)["targets"]["all_beats_strongest_everywhere_holm"] is False


def test_one_model_against_one_per_species_at_the_proof_of_concepts_leads():
    sys.path.insert(0, str(REPO / "bench"))
    try:
        bench = load_script(REPO / "bench" / "models.py")
    finally:
        sys.path.remove(str(REPO / "bench"))
    rmse = {"dlens-one": 10.0, "dlens-own": 8.0} | {name: 12.0 for name in bench.BASELINES} | {"emos": 9.0}
    continuous = [
        {"product": product, "species": "o3", "lead": lead, "rmse": value + lead / 100, "region": "domain",
         "season": "all"}
        for product, value in rmse.items() for lead in (12, 36)
    ] + [{"product": "dlens-one", "species": "o3", "lead": None, "rmse": 99.0, "region": "domain", "season": "all"}]  # fmt: skip
    rows = bench.comparison_rows({"continuous": continuous}, "dlens-one", {"o3": "dlens-own"}, [12, 36], "f")
    assert [(r["lead"], r["strongest"]) for r in rows] == [(12, "emos"), (36, "emos")]
    assert rows[1]["own_over_one"] == pytest.approx(8.36 / 10.36)
    assert rows[0]["one_over_strongest"] == pytest.approx(10.12 / 9.12)
    result = bench.summary(rows)
    assert result["one_better_rows"] == 0 and result["own_beats_strongest_rows"] == 2
    assert result["by_species"]["o3"] == pytest.approx(np.mean([8.12 / 10.12, 8.36 / 10.36]))
    assert "| f | o3 | 12 | 10.12 | 8.12 | 12.12 | emos 9.12 | 0.802 |" in bench.markdown_table(rows)
