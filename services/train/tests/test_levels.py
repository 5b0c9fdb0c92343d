"""Models of other levels than the surface (`data.levels`): the dataset's channels of a 3-level config equal a
hand computation from the store, a level the store lacks is named, and a registered 2-level model (and one of
level 500 m alone) predicts at its levels only."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch

from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.bundle import model_card
from dlens.model.features import assemble_inputs, block_labels, blocks, channel_names
from dlens.model.inference import ensemble
from dlens.model.predictors import Standardisation
from dlens.model.registry import ModelEntry, load_model, resolve
from dlens.testing.mock_store import build_mock_store, level_factor
from dlens.train.config import DataConfig, Period, TrainConfig
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.export import report_scores
from dlens.train.loop import input_channels, make_model
from dlens.train.predict import predict
from dlens.train.registry import publish

START = datetime(2025, 3, 1)
LEADS = (0, 12, 24)
LEVELS = (0, 500, 1000)
SPECIES = ("o3", "no2")
NO_METEO = Standardisation({}, {})
SHAPE = (16, 24)
PERIODS = {
    "train": {"start": "2025-03-01", "end": "2025-03-03"},
    "validation": {"start": "2025-03-04", "end": "2025-03-04"},
    "test": {"start": "2025-03-05", "end": "2025-03-05"},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("levels") / "mock.zarr")
    build_mock_store(url, START, days=5, leads=LEADS, levels=LEVELS)
    return url


def data_config(**changes) -> DataConfig:
    periods = {k: Period.model_validate(v) for k, v in PERIODS.items()}
    return DataConfig(**{"species": SPECIES, **periods, "static": False, **changes})


def train_config(name: str, levels: list[int]) -> TrainConfig:
    data = {"species": list(SPECIES), **PERIODS, "static": False, "loader_workers": 0, "levels": levels}
    return TrainConfig.model_validate(
        {"name": name, "data": data, "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}}}
    )


def test_the_channels_of_three_levels_are_the_stores_members_at_each(store):
    config = data_config(levels=LEVELS)
    normaliser = store_normaliser(store)
    data = StoreDataset(store, config, "train", normaliser, NO_METEO)
    reader = StoreReader(store)
    names = channel_names(SPECIES, (), config.predictors, levels=LEVELS)
    assert blocks(SPECIES, LEVELS)[:4] == [("o3", 0), ("o3", 500), ("o3", 1000), ("no2", 0)]
    assert names[0] == "o3@0m:chimere" and names[24] == "o3@500m:chimere"
    assert names[-6:-5] == ["no2@1000m:spread"]
    # a run whose first member is absent (day 2 of the mock store): its presence is 0 at every level
    index = next(i for i, (run, _) in enumerate(data.samples) if str(run).startswith("2025-03-03"))
    run, lead = data.samples[index]
    sample = data[index]
    inputs, median = assemble_inputs(sample["members"][None], sample["static"][None], sample["time"][None])
    channel = dict(zip(names, inputs[0].numpy()))
    assert len(channel) == inputs.shape[1] == len(names) == 6 * 24 + 5
    for k, sp in enumerate(SPECIES):
        raw = reader.members(sp, run, lead)  # (member, level, H, W), by hand
        truth = reader.analysis(sp, run + np.timedelta64(lead, "h"))
        for v, level in enumerate(LEVELS):
            label, block = f"{sp}@{level}m", k * len(LEVELS) + v
            z = (np.log1p(raw[:, v]) - normaliser.log1p_mean[sp]) / normaliser.log1p_std[sp]
            for m, member in enumerate(MEMBERS):
                present = np.isfinite(raw[m, v]).all()
                np.testing.assert_array_equal(channel[f"{label}:present:{member}"], float(present))
                expected = z[m] if present else np.zeros(SHAPE)
                np.testing.assert_allclose(channel[f"{label}:{member}"], expected, atol=1e-5)
            assert not np.isfinite(raw[0, v]).any()  # chimere absent that day
            np.testing.assert_allclose(channel[f"{label}:median"], np.nanmedian(z, axis=0), atol=1e-5)
            np.testing.assert_allclose(median[0, block].numpy(), np.nanmedian(z, axis=0), atol=1e-5)
            target = (np.log1p(truth[v]) - normaliser.log1p_mean[sp]) / normaliser.log1p_std[sp]
            np.testing.assert_allclose(sample["target"][block].numpy(), target, atol=1e-5)
        # the levels differ as the mock store's profile says: the blocks are not one level repeated
        ratio = np.nanmean(raw[:, 2]) / np.nanmean(raw[:, 0])
        assert ratio == pytest.approx(level_factor(sp, 1000), rel=0.05) and abs(np.log(ratio)) > 0.09


def test_one_level_reads_that_level_alone(store):
    data = StoreDataset(store, data_config(levels=(500,)), "train", store_normaliser(store), NO_METEO)
    run, lead = data.samples[0]
    sample = data[0]
    assert sample["members"].shape == (len(SPECIES), len(MEMBERS), *SHAPE)
    truth = StoreReader(store).analysis("no2", run + np.timedelta64(lead, "h"))[1]
    expected = data.normaliser.forward("no2", truth)
    np.testing.assert_allclose(sample["target"][1].numpy(), expected, atol=1e-6)
    assert block_labels(SPECIES, (500,)) == ("o3@500m", "no2@500m")
    assert block_labels(SPECIES, (0,)) == SPECIES  # the surface: the channels of a model from before levels


def test_a_level_the_store_lacks_is_named(store):
    with pytest.raises(ValueError, match=r"levels 250 m are not in store .* \(it has 0, 500, 1000 m\)"):
        StoreDataset(store, data_config(levels=(0, 250)), "train", store_normaliser(store), NO_METEO)


def test_a_card_without_levels_reads_as_the_surface():
    card = {"config": {"data": {"species": ["o3"]}}}
    entry = ModelEntry("old", card)
    assert entry.levels == (0,) and entry.blocks == [("o3", 0)] and entry.block_species == ("o3",)


@pytest.mark.parametrize("levels", [[0, 500], [500]])
def test_a_registered_model_predicts_at_its_levels_only(store, ray_cluster, tmp_path, levels):
    url = str(tmp_path / "levels.zarr")
    shutil.copytree(store, url)
    config = train_config("levels", levels)
    torch.manual_seed(0)
    weights = make_model(config, SHAPE).state_dict()
    model_id = publish(url, config, store_normaliser(url), NO_METEO, weights, SHAPE, {})
    entry = resolve(url, model_id)
    assert entry.levels == tuple(levels) and entry.card["levels"] == levels
    assert entry.card["input_channels"] == input_channels(config)
    assert entry.blocks == blocks(SPECIES, tuple(levels))
    run = np.datetime64("2025-03-05T00")
    name, done, report = predict(url, model_id, [run])
    assert done == [run] and not report.failed
    reader = StoreReader(url)
    model = load_model(url, entry)
    positions = [LEVELS.index(level) for level in levels]
    for lead in LEADS:
        raw = np.stack([reader.members(sp, run, lead) for sp in SPECIES])  # (species, member, level, H, W)
        members = np.stack([raw[k, :, p] for k in range(len(SPECIES)) for p in positions])
        valid = run + np.timedelta64(lead, "h")
        expected = ensemble(model, entry, members[None], np.zeros((0, *SHAPE)), [lead], [valid])[0]
        for sp in SPECIES:
            product = reader.product(name, sp, run, lead)  # (level, H, W) of the store
            for v, level in enumerate(LEVELS):
                if level in levels:
                    field = expected[entry.blocks.index((sp, level))]
                    assert np.isfinite(product[v]).all()
                    np.testing.assert_allclose(product[v], field, rtol=1e-5)
                else:
                    assert np.isnan(product[v]).all()
    # a level the store lacks: predict names it before writing anything
    surface = str(tmp_path / "surface.zarr")
    build_mock_store(surface, START, days=5, leads=LEADS)
    model_id = publish(surface, config, store_normaliser(surface), NO_METEO, weights, SHAPE, {})
    with pytest.raises(
        ValueError, match=rf"model {model_id} predicts levels .*: levels 500 m are not in store"
    ):
        predict(surface, model_id, [run])
    assert not StoreReader(surface).has(f"products/dlens-{model_id}")


def test_the_bundle_card_gives_the_test_scores_of_each_level(store, tmp_path):
    url = str(tmp_path / "scores.zarr")
    shutil.copytree(store, url)
    config = train_config("scores", [0, 500])
    weights = make_model(config, SHAPE).state_dict()
    entry = resolve(url, publish(url, config, store_normaliser(url), NO_METEO, weights, SHAPE, {}))
    overall = {"lead_block": "all", "region": "domain", "season": "all", "lead": None}
    product = f"dlens-{entry.model_id}"
    rows = [
        overall | {"product": p, "species": "o3", "level": level, "rmse": rmse + level / 100}
        for p, rmse in ((product, 1.0), ("median", 2.0), ("weighted", 1.5))
        for level in LEVELS
        if p != product or level < 1000
    ]
    meta = {"created": "2026-01-01T00:00:00", "period": {"start": "2025-03-05", "days": 1, "runs": []}}
    (Path(url) / "reports" / "r1").mkdir(parents=True)
    (Path(url) / "reports" / "r1" / "metrics.json").write_text(json.dumps({"meta": meta, "continuous": rows}))
    scores = report_scores(url, entry.model_id, levels=entry.levels)
    assert [(r["level"], r["dlens"], r["median"], r["weighted"]) for r in scores] == [
        (0, 1.0, 2.0, 1.5),
        (500, 6.0, 7.0, 6.5),
    ]
    card = model_card(entry.card | {"test_scores": scores})
    assert "| species | level (m) | DL-ENS |" in card and "| o3 | 500 | 6.000 | 7.000 | 6.500 |" in card
    assert "members (0 and 500 m, read together, concentrations" in card
    # a surface model's card keeps its table and says "surface"
    assert report_scores(url, entry.model_id)[0]["level"] == 0
    surface = entry.card | {
        "config": entry.card["config"] | {"data": entry.card["config"]["data"] | {"levels": [0]}}
    }
    text = model_card(surface | {"test_scores": scores[:1]})
    assert "| o3 | 1.000 | 2.000 | 1.500 |" in text and "members (surface concentrations" in text
