"""Training on patches (`data.patches`): the corners cover every cell of the domain, a patch keeps its members,
static fields, predictors, target and mask aligned, validation cuts the same patches at every epoch, batches
hold batch_size × per_sample patches, and a model fitted on patches predicts the whole domain."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from dlens.common.reader import StoreReader
from dlens.model.registry import resolve
from dlens.testing.mock_store import build_mock_store
from dlens.train.cli import main
from dlens.train.config import DataConfig, Period, TrainConfig
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.fit import fit
from dlens.train.patches import FIELDS, patch_origins
from dlens.train.predictor_stats import store_standardisation

SHAPE = (16, 24)
PERIODS = {
    "train": Period(start=date(2025, 3, 1), end=date(2025, 3, 3)),
    "validation": Period(start=date(2025, 3, 4), end=date(2025, 3, 4)),
    "test": Period(start=date(2025, 3, 5), end=date(2025, 3, 6)),
}
PHASE_TWO = {"meteo": True, "recent_analysis": True, "zenith": True}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("patches") / "mock.zarr")
    build_mock_store(url, datetime(2025, 3, 1), days=6, leads=(0, 24, 48), meteo=True)
    return url


def dataset(url: str, split: str = "train", **changes) -> StoreDataset:
    config = DataConfig(**{**PERIODS, "species": ("o3", "no2"), "patches": {"size": (8, 12), "per_sample": 3},
                           "predictors": PHASE_TWO, **changes})  # fmt: skip
    standardisation = store_standardisation(url, config.train, config.predictors)
    return StoreDataset(url, config, split, store_normaliser(url), standardisation, training=split == "train")


@pytest.mark.parametrize("size", [(8, 12), (4, 4), (1, 1), (16, 24), (5, 23)])
def test_patch_corners_cover_every_cell_nearly_evenly(size):
    rows, cols = size
    origins = patch_origins(SHAPE, size, 50_000, np.random.default_rng(0))
    assert (
        (origins >= 0).all()
        and (origins[:, 0] <= SHAPE[0] - rows).all()
        and (origins[:, 1] <= SHAPE[1] - cols).all()
    )
    covered = np.zeros(SHAPE)
    for r, c in origins:
        covered[r : r + rows, c : c + cols] += 1
    assert covered.min() > 0
    # on each axis no cell is covered twice as often as another
    assert covered.max() / covered.min() < 4 * 1.1
    # and the corner cells as often as those more than a patch from every edge
    interior = covered[rows : SHAPE[0] - rows, cols : SHAPE[1] - cols]
    if interior.size:
        corners = covered[[0, 0, -1, -1], [0, -1, 0, -1]]
        assert corners.mean() == pytest.approx(interior.mean(), rel=0.1)


def test_a_patch_larger_than_the_field_is_refused(store):
    with pytest.raises(ValueError, match="do not fit"):
        patch_origins(SHAPE, (17, 8), 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"patches of 8 × 25 do not fit in store .* domain of 16 × 24"):
        dataset(store, patches={"size": (8, 25)})


def test_each_patch_is_its_sample_cut_at_its_origin(store):
    data = dataset(store)
    assert data.shape == (8, 12) and data.domain_shape == SHAPE
    index = 4
    torch.manual_seed(0)  # member dropout draws from torch's seed
    item = data[index]
    assert item["members"].shape[0] == item["origin"].shape[0] == 3
    torch.manual_seed(0)
    data._rng = None
    whole = data.field(index)
    predictors = whole["predictors"]
    assert predictors.shape[0] > 0 and torch.isfinite(predictors).all()
    for p, (r, c) in enumerate(item["origin"].tolist()):
        for name in FIELDS:
            expected = whole[name][..., r : r + 8, c : c + 12]
            assert torch.equal(item[name][p].nan_to_num(-1), expected.nan_to_num(-1)), name
        assert torch.equal(item["time"][p], whole["time"])
    # the static channels hold the patch's own positions: latitude and longitude of the store's grid there
    (r, c) = item["origin"][0].tolist()
    latitude, longitude = item["static"][0, 2], item["static"][0, 3]
    assert torch.equal(latitude, whole["static"][2][r : r + 8, c : c + 12])
    assert torch.equal(longitude, whole["static"][3][r : r + 8, c : c + 12])
    domain = StoreReader(store).spec.domain
    rising = 1 if domain.latitude[-1] > domain.latitude[0] else -1
    assert (rising * np.diff(latitude[:, 0].numpy()) > 0).all() and (np.diff(longitude[0].numpy()) > 0).all()


def test_validation_cuts_the_same_patches_every_epoch_and_training_new_ones(store):
    validation = dataset(store, "validation")
    assert torch.equal(validation[1]["origin"], validation[1]["origin"])
    assert not torch.equal(validation[0]["origin"], validation[1]["origin"])
    training = dataset(store)
    draws = {tuple(map(tuple, training[0]["origin"].tolist())) for _ in range(5)}
    assert len(draws) > 1


def test_a_batch_holds_every_patch_of_its_samples(store):
    data = dataset(store, member_dropout=0.0)
    batch = next(iter(DataLoader(data, batch_size=2, collate_fn=data.collate)))
    assert batch["members"].shape[:1] == batch["target"].shape[:1] == batch["time"].shape[:1] == (6,)
    assert batch["members"].shape[-2:] == (8, 12) and batch["origin"].shape == (6, 2)


@pytest.mark.slow
def test_a_model_fitted_on_patches_predicts_the_whole_domain(store, ray_cluster, capsys):
    config = TrainConfig.model_validate({
        "name": "patches",
        "data": {"species": ["o3", "no2"], **{k: v.model_dump() for k, v in PERIODS.items()},
                 "patches": {"size": [8, 12], "per_sample": 4}, "loader_workers": 0},
        "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
        "optim": {"epochs": 1, "batch_size": 2},
    })  # fmt: skip
    model_id = fit(store, config, workers=1)
    card = resolve(store, model_id).card
    assert card["input_shape"] == [8, 12] and card["config"]["data"]["patches"]["per_sample"] == 4
    assert np.isfinite(card["validation"]["val_loss"])
    assert main(["--no-progress", "predict", "--store", store, "--model", model_id,
                 "--start", "2025-03-05", "--days", "1"]) == 0  # fmt: skip
    field = StoreReader(store).product(f"dlens-{model_id}", "o3", np.datetime64("2025-03-05T00", "h"), 24)
    assert field.shape == (1, *SHAPE) and np.isfinite(field).all() and (field >= 0).all()
