"""A model of two levels (0 and 500 m, the levels as channels) round-trips through fit, the registry, predict,
evaluate and serve on a tiny 3-level store: its product is its fields at both levels and NaN at the third,
evaluate scores it and every baseline at each level, and serve answers GET at each of its levels (equal to
the product) and 422 at another, and POST only for a model of one level (one trained on 500 m alone)."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import numpy as np
import pytest

from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.evaluate.cli import main as evaluate
from dlens.model.registry import resolve
from dlens.serve.app import APP_NAME, build_app
from dlens.serve.args import ServeArgs
from dlens.testing.mock_store import build_mock_store
from dlens.testing.plugin import free_port
from dlens.train.config import TrainConfig
from dlens.train.fit import fit
from dlens.train.predict import predict

TOKEN = "test-token"
START = datetime(2025, 3, 1)
LEADS = (0, 12, 24)
LEVELS = (0, 500, 1000)
SPECIES = ["o3", "no2"]
TEST_RUNS = [np.datetime64("2025-03-05T00"), np.datetime64("2025-03-06T00")]
BASELINES = ["median", "weighted", "mos", "emos", "persistence", "climatology"]
CONFIG = {
    "name": "two-levels",
    "data": {
        "species": SPECIES,
        "levels": [0, 500],
        "train": {"start": "2025-03-01", "end": "2025-03-03"},
        "validation": {"start": "2025-03-04", "end": "2025-03-04"},
        "test": {"start": "2025-03-05", "end": "2025-03-06"},
        "static": False,
        "loader_workers": 0,
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
    "optim": {"epochs": 1, "batch_size": 4},
}


@pytest.fixture(scope="module")
def models(tmp_path_factory, ray_cluster) -> tuple[str, dict[str, str], dict]:
    """The store, the ids of the fitted 2-level model and of one fitted on 500 m alone, both predicted for the
    test runs, and the metrics of `dlens-evaluate` over the first."""
    root = tmp_path_factory.mktemp("levels")
    url = str(root / "mock.zarr")
    build_mock_store(url, START, days=6, leads=LEADS, levels=LEVELS)
    ids = {"two": fit(url, TrainConfig.model_validate(CONFIG), storage=str(root / "ray-results"))}
    high = TrainConfig.model_validate(CONFIG | {"name": "high", "data": CONFIG["data"] | {"levels": [500]}})
    ids["high"] = fit(url, high, storage=str(root / "ray-results"))
    for model_id in ids.values():
        _, done, report = predict(url, model_id, TEST_RUNS)
        assert done == TEST_RUNS and not report.failed
    products = ",".join([f"dlens-{ids['two']}", *BASELINES])
    out = root / "report"
    args = ["--no-progress", "--store", url, "--start", "2025-03-05", "--days", "2", "--resamples", "100"]
    assert evaluate([*args, "--products", products, "--out", str(out)]) == 0
    return url, ids, json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def client(models) -> httpx.Client:
    from ray import serve

    url, ids, _ = models
    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(
        build_app(ServeArgs(store=url, model=ids["two"], api_token=TOKEN)), name=APP_NAME, route_prefix="/"
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as client:
        yield client
    serve.delete(APP_NAME)
    serve.shutdown()


def test_the_product_holds_the_models_levels_and_nan_at_the_others(models):
    url, ids, _ = models
    entry, reader = resolve(url, ids["two"]), StoreReader(url)
    assert entry.levels == (0, 500) and entry.card["levels"] == [0, 500]
    assert entry.card["config"]["data"]["levels"] == [0, 500]
    assert (
        entry.card["input_channels"][0] == "o3@0m:chimere" and len(entry.card["input_channels"]) == 4 * 24 + 5
    )
    for run in TEST_RUNS:
        for sp in SPECIES:
            for lead in LEADS:
                product = reader.product(f"dlens-{ids['two']}", sp, run, lead)
                assert np.isfinite(product[:2]).all() and np.isnan(product[2]).all()
                # each level's field follows that level's members, not the surface's
                members = reader.members(sp, run, lead)
                for v in (0, 1):
                    median = np.nanmedian(members[:, v], axis=0)
                    assert np.abs(product[v] - median).mean() < 0.5 * np.abs(median).mean()
                assert np.abs(product[1] - product[0]).mean() > 0.05 * np.abs(product[0]).mean()


def test_evaluate_scores_the_model_and_every_baseline_at_each_level(models):
    url, ids, metrics = models
    product = f"dlens-{ids['two']}"
    assert metrics["meta"]["levels"] == list(LEVELS)
    overall = {
        (r["product"], r["species"], r["level"]): r["rmse"]
        for r in metrics["continuous"]
        if (r["lead_block"], r["region"], r["season"], r["lead"]) == ("all", "domain", "all", None)
    }
    for sp in SPECIES:
        for level in LEVELS:
            for name in BASELINES:
                assert overall[(name, sp, level)] is not None and overall[(name, sp, level)] > 0, (
                    name,
                    level,
                )
            assert (overall[(product, sp, level)] is None) == (level == 1000)
    # a row of level 500 is that level's error, by hand from the store
    reader, lead = StoreReader(url), 12
    errors = {name: [] for name in (product, "median")}
    for run in TEST_RUNS:
        truth = reader.analysis("no2", run + np.timedelta64(lead, "h"))[1]
        for name in errors:
            errors[name].append(reader.product(name, "no2", run, lead)[1] - truth)
    rows = {
        r["product"]: r["rmse"]
        for r in metrics["continuous"]
        if (r["species"], r["level"], r["lead"], r["region"]) == ("no2", 500, lead, "domain")
    }
    for name, error in errors.items():
        assert rows[name] == pytest.approx(float(np.sqrt(np.mean(np.square(error)))), rel=1e-4)
    surface = [r["rmse"] for r in metrics["continuous"] if (r["product"], r["species"], r["level"], r["lead"],
               r["region"]) == ("median", "no2", 0, lead, "domain")]  # fmt: skip
    assert surface[0] != pytest.approx(rows["median"], rel=1e-3)


def test_models_list_their_levels(models, client):
    _, ids, _ = models
    listed = {m["id"]: m["levels"] for m in client.get("/v1/models").json()}
    assert listed[ids["two"]] == [0, 500] and listed[ids["high"]] == [500]


@pytest.mark.parametrize("level", [0, 500])
def test_forecast_at_each_level_equals_the_product(models, client, level):
    url, ids, _ = models
    reader, run, v = StoreReader(url), TEST_RUNS[0], LEVELS.index(level)
    answer = client.get("/v1/forecast/no2", params={"run": "2025-03-05T00:00", "lead": 12, "level": level})
    assert answer.status_code == 200, answer.text
    got = answer.json()
    assert got["level"] == level
    product = reader.product(f"dlens-{ids['two']}", "no2", run, 12)[v]
    assert np.abs(np.array(got["dlens"]) - product).max() <= 1e-4
    median = np.nanmedian(reader.members("no2", run, 12)[:, v], axis=0)
    np.testing.assert_allclose(np.array(got["median"]), median, rtol=1e-6)


def test_a_level_the_model_does_not_predict_is_refused(models, client):
    _, ids, _ = models
    answer = client.get("/v1/forecast/no2", params={"run": "2025-03-05T00:00", "lead": 12, "level": 1000})
    assert answer.status_code == 422, answer.text
    assert f"level 1000 m: model {ids['two']} predicts levels 0, 500 m only" in answer.json()["detail"]


def body(url: str, species: str, level: int) -> dict:
    reader, run = StoreReader(url), TEST_RUNS[0]

    def fields(sp: str) -> dict:
        at = reader.members(sp, run, 12)[:, LEVELS.index(level)]
        return {m: f.tolist() for m, f in zip(MEMBERS, at) if np.isfinite(f).all()}

    return {
        "species": species, "run": "2025-03-05T00:00", "lead": 12, "level": level, "members": fields(species),
        "context": {sp: fields(sp) for sp in SPECIES if sp != species},
    }  # fmt: skip


def test_ensemble_serves_a_model_of_one_level_and_names_the_levels_of_another(models, client):
    url, ids, _ = models
    two = client.post("/v1/ensemble", json=body(url, "o3", 500))
    assert two.status_code == 422, two.text
    assert f"model {ids['two']} reads the members at levels 0, 500 m together" in two.json()["detail"]
    high = {"model": ids["high"]}
    posted = client.post("/v1/ensemble", json=body(url, "o3", 500), params=high)
    assert posted.status_code == 200, posted.text
    product = StoreReader(url).product(f"dlens-{ids['high']}", "o3", TEST_RUNS[0], 12)
    assert np.isnan(product[[0, 2]]).all()
    assert np.abs(np.array(posted.json()["dlens"]) - product[1]).max() <= 1e-4
    forecast = client.get(
        "/v1/forecast/o3", params={"run": "2025-03-05T00:00", "lead": 12, "level": 500, **high}
    )
    assert (
        forecast.status_code == 200 and np.abs(np.array(forecast.json()["dlens"]) - product[1]).max() <= 1e-4
    )
    surface = client.post("/v1/ensemble", json=body(url, "o3", 0), params=high)
    assert surface.status_code == 422
    assert f"level 0 m: model {ids['high']} predicts levels 500 m only" in surface.json()["detail"]
