"""`data.target`: a model learns the analysis, the interim or the validated reanalysis, as configured."""

from __future__ import annotations

import json
from datetime import date, datetime

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from dlens.common.reader import StoreReader
from dlens.model.bundle import model_card
from dlens.model.predictors import Standardisation
from dlens.model.registry import resolve
from dlens.testing.mock_store import build_mock_store
from dlens.train.config import DataConfig, Period, TrainConfig
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.export import report_scores
from dlens.train.fit import fit
from dlens.train.loop import make_model
from dlens.train.registry import publish

NO_METEO = Standardisation({}, {})  # these configs read no meteo predictor

#: The interim reanalysis is the analysis times 1.5: a sample says which of the two it holds.
INTERIM = 1.5


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """Analysis and interim reanalysis, no validated reanalysis."""
    url = str(tmp_path_factory.mktemp("target") / "mock.zarr")
    build_mock_store(url, datetime(2025, 3, 1), days=6, leads=(0, 24), reanalyses={"interim": INTERIM})
    return url


def data_config(**changes) -> DataConfig:
    periods = {
        "train": Period(start=date(2025, 3, 1), end=date(2025, 3, 3)),
        "validation": Period(start=date(2025, 3, 4), end=date(2025, 3, 4)),
        "test": Period(start=date(2025, 3, 5), end=date(2025, 3, 6)),
    }
    return DataConfig(**{**periods, "species": ("o3", "no2"), "static": False, **changes})


def test_target_defaults_to_the_analysis_and_refuses_unknown_names():
    assert data_config().target == "analysis"
    with pytest.raises(ValidationError, match="interim"):
        data_config(target="reanalysis")


@pytest.mark.parametrize("split", ["train", "validation"])
def test_interim_target_reads_the_interim_group(store, split):
    """Training and validation samples hold the interim reanalysis, never the analysis it differs from."""
    norm = store_normaliser(store)
    reader = StoreReader(store)
    interim = StoreDataset(store, data_config(target="interim"), split, norm, NO_METEO)
    analysis = StoreDataset(store, data_config(), split, norm, NO_METEO)
    assert interim.samples == analysis.samples
    for index in (0, len(interim) - 1):
        run, lead = interim.samples[index]
        valid = run + np.timedelta64(lead, "h")
        for k, sp in enumerate(("o3", "no2")):
            field = reader.analysis(sp, valid, target="interim")[0]
            np.testing.assert_allclose(field, INTERIM * reader.analysis(sp, valid)[0], rtol=1e-6)
            want = torch.from_numpy(norm.forward(sp, field).astype(np.float32))
            torch.testing.assert_close(interim[index]["target"][k], want)
            assert not torch.allclose(analysis[index]["target"][k], want)


def test_absent_target_is_a_clear_error(store):
    with pytest.raises(ValueError) as caught:
        StoreDataset(store, data_config(target="validated"), "train", store_normaliser(store), NO_METEO)
    message = str(caught.value)
    assert "2025-03-01 to 2025-03-03" in message and "validated (group reanalysis/validated)" in message


def test_card_and_bundle_readme_record_the_target(store):
    config = TrainConfig.model_validate(
        {
            "name": "interim",
            "data": data_config(target="interim").model_dump(mode="json"),
            "model": {"architecture": "HalfUNet", "settings": {"num_filters": 4}},
        }
    )
    shape = (16, 24)
    model = make_model(config, shape)
    model_id = publish(
        store, config, store_normaliser(store), NO_METEO, model.state_dict(), shape, {"val_loss": 1.0}
    )
    card = resolve(store, model_id).card
    assert card["target"] == "interim" and card["config"]["data"]["target"] == "interim"
    readme = model_card({**card, "test_scores": []})
    assert "trained against the CAMS interim reanalysis" in readme and "CAMS analysis" not in readme


def test_a_bundle_takes_its_test_scores_from_a_report_against_its_target(tmp_path):
    """The newest report scored the model against the analysis; the interim model's bundle takes the older
    report against the interim reanalysis."""
    for name, target, created, rmse in [("old", "interim", "2026-12-01T00:00:00", 3.0),
                                         ("new", "analysis", "2026-12-02T00:00:00", 2.0)]:  # fmt: skip
        meta = {"created": created, "period": {"start": "2025-03-05", "days": 2}, "target": {"name": target}}
        row = {"product": "dlens-m", "species": "o3", "rmse": rmse, "lead_block": "all", "region": "domain",
               "season": "all", "lead": None}  # fmt: skip
        (tmp_path / "reports" / name).mkdir(parents=True)
        (tmp_path / "reports" / name / "metrics.json").write_text(
            json.dumps({"meta": meta, "continuous": [row]})
        )
    ((interim,), (analysis,)) = (
        report_scores(str(tmp_path), "m", "interim"),
        report_scores(str(tmp_path), "m"),
    )
    assert (interim["dlens"], interim["report"]) == (3.0, "reports/old") and analysis["dlens"] == 2.0
    assert report_scores(str(tmp_path), "m", "validated") == []


@pytest.mark.slow  # one epoch of seconds, behind a minute of Ray Train start-up
def test_fit_on_the_interim_reanalysis_publishes_a_card_that_says_so(store, tmp_path, ray_cluster):
    """A one-epoch Ray Train fit against the interim: its card records it; asked for the validated
    reanalysis the store lacks, the fit stops before any worker starts."""
    raw = {
        "name": "interim-fit",
        "data": {**data_config(target="interim").model_dump(mode="json"), "loader_workers": 0},
        "model": {"architecture": "HalfUNet", "settings": {"num_filters": 4}},
        "optim": {"epochs": 1, "batch_size": 4},
    }
    model_id = fit(store, TrainConfig.model_validate(raw), storage=str(tmp_path / "ray"))
    card = resolve(store, model_id).card
    assert card["target"] == "interim" and card["config"]["data"]["target"] == "interim"
    raw["data"]["target"] = "validated"
    with pytest.raises(ValueError, match="the validated"):
        fit(store, TrainConfig.model_validate(raw), storage=str(tmp_path / "ray"))
