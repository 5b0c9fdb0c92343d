"""`dlens-evaluate --target`: every product scored against the analysis, the interim or the validated
reanalysis; the baselines that learn from the target fitted on it; the stations scored whatever the target
(a local Ray, a real mock store)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import zarr

from dlens.common.layout import STATION_FIELDS, Status
from dlens.common.reader import StoreReader
from dlens.common.species import SPECIES_NAMES
from dlens.common.writer import StoreCoordinator
from dlens.evaluate.baselines import ensure_baselines
from dlens.evaluate.cli import main
from dlens.testing.mock_store import build_mock_store

START = datetime(2025, 3, 1)
DOMAIN = "44.05,45.05,7.05,8.55"
LEADS = (0, 12, 24)
#: The validated reanalysis is the analysis times 1.3: a score against one is not a score against the other.
VALIDATED = 1.3
RUNS = [np.datetime64("2025-03-09T00", "h"), np.datetime64("2025-03-10T00", "h")]
ARGS = ["--no-progress", "--start", "2025-03-09", "--days", "2", "--resamples", "100", "--species", "o3"]


@pytest.fixture(scope="module")
def store(tmp_path_factory, ray_cluster) -> str:
    """Ten days of analysis and validated reanalysis (no interim), and three stations that measure O3."""
    url = str(tmp_path_factory.mktemp("targets") / "mock.zarr")
    build_mock_store(url, START, days=10, domain=DOMAIN, leads=LEADS, reanalyses={"validated": VALIDATED})
    _add_stations(url)
    return url


def _add_stations(url: str) -> None:
    coordinator = StoreCoordinator(url)
    stations = {
        "station_code": np.array(["IT0001A", "IT0002A", "IT0003A"]),
        "station_type": np.array(["background", "traffic", "background"]),
        "station_area": np.array(["urban", "urban", "rural"]),
        "station_latitude": np.array([44.25, 44.55, 44.85]),
        "station_longitude": np.array([7.35, 7.85, 8.25]),
        "station_altitude": np.zeros(3),
        "withheld": np.array([False, False, True]),
    }
    assert set(stations) == set(STATION_FIELDS)
    measures = np.zeros((3, len(SPECIES_NAMES)))
    measures[:, SPECIES_NAMES.index("o3")] = 1
    coordinator.ensure_observations(stations, measures)
    times = [START.replace(day=9 + d // 24, hour=d % 24) for d in range(3 * 24)]
    positions = coordinator.ensure_axis("observations", times)
    rng = np.random.default_rng(0)
    coordinator.root["observations/o3"][positions[0] : positions[-1] + 1] = rng.uniform(
        20, 120, (len(times), 3)
    )
    coordinator.mark("observations", positions, Status.COMPLETE, (SPECIES_NAMES.index("o3"),))


def _evaluate(store: str, out: Path, target: str | None, products: str = "median,persistence") -> dict:
    options = [] if target is None else ["--target", target]
    assert main([*ARGS, *options, "--store", store, "--products", products, "--out", str(out)]) == 0
    return json.loads((out / "metrics.json").read_text())


def _overall(metrics: dict, product: str) -> dict:
    (row,) = [r for r in metrics["continuous"] if r["product"] == product and r["lead_block"] == "all"
              and r["region"] == "domain" and r["season"] == "all" and r["level"] == 0]  # fmt: skip
    return row


def _rmse(reader: StoreReader, product: str, target: str) -> float:
    errors = [
        reader.product(product, "o3", run, lead)[0]
        - reader.analysis("o3", run + np.timedelta64(lead, "h"), target=target)[0]
        for run in RUNS
        for lead in LEADS
    ]
    return float(np.sqrt(np.mean(np.square(np.asarray(errors, dtype=np.float64)))))


def test_validated_target_scores_every_product_against_the_validated_group(store, tmp_path):
    validated = _evaluate(store, tmp_path / "validated", "validated")
    analysis = _evaluate(store, tmp_path / "analysis", None)
    meta = validated["meta"]
    assert meta["target"]["name"] == "validated" and meta["target"]["group"] == "reanalysis/validated"
    assert meta["title"] == "DL-ENS verification against the validated reanalysis"
    assert meta["target"]["stored_as"] == {"median": "median", "persistence": "persistence.validated"}
    assert analysis["meta"]["target"]["name"] == "analysis"
    assert "validated reanalysis" in (tmp_path / "validated" / "index.html").read_text()

    reader = StoreReader(store)
    median = _overall(validated, "median")
    assert median["rmse"] == pytest.approx(_rmse(reader, "median", "validated"), rel=1e-6)
    assert _overall(analysis, "median")["rmse"] == pytest.approx(
        _rmse(reader, "median", "analysis"), rel=1e-6
    )
    assert median["rmse"] > 2 * _overall(analysis, "median")["rmse"]  # the members miss the 30 %
    # persistence is the validated reanalysis of the day before, stored apart from the analysis' persistence
    run, lead = RUNS[1], 12
    np.testing.assert_array_equal(
        reader.product("persistence.validated", "o3", run, lead),
        reader.analysis("o3", run - np.timedelta64(24 - lead, "h"), target="validated"),
    )
    assert zarr.open_group(store, mode="r")["products/persistence.validated"].attrs["target"] == "validated"
    assert _overall(validated, "persistence")["rmse"] == pytest.approx(
        _rmse(reader, "persistence.validated", "validated"), rel=1e-6
    )
    # the stations are their own truth: the median's scores there are the same whatever the gridded target
    at_stations = [[r for r in m["stations"] if r["product"] == "median"] for m in (validated, analysis)]
    assert at_stations[0] and at_stations[0] == at_stations[1]
    assert {r["stations"] for r in at_stations[0]} >= {"all", "withheld"}
    assert all(r["n"] > 0 for r in at_stations[0])


def test_a_target_the_store_lacks_is_refused_in_one_line(store, tmp_path, capsys):
    assert main([*ARGS, "--target", "interim", "--store", store, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no interim (group reanalysis/interim) in store" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r").exists()


def test_learned_baselines_are_fitted_on_the_target(store):
    """mos and emos fitted on the validated reanalysis learn its 30 % and beat the analysis' fits there."""
    for target in ("analysis", "validated"):
        done = ensure_baselines(store, RUNS, ["mos", "emos"], 7, reference_days=6, target=target)
        assert not done.failed and done.computed == {"mos": 2, "emos": 2}
    reader = StoreReader(store)
    median = _rmse(reader, "median", "validated")
    for name in ("mos", "emos"):
        assert reader.has(f"products/{name}.validated")
        assert _rmse(reader, f"{name}.validated", "validated") < 0.5 * min(
            median, _rmse(reader, name, "validated")
        )
