"""The store dataset: splits by date, lazily opened store, missing members, dropout."""

import pickle
from datetime import date, datetime

import numpy as np
import pytest
import torch

from dlens.common.species import MEMBERS
from dlens.model.features import assemble_inputs, channel_names
from dlens.model.predictors import Standardisation
from dlens.testing.mock_store import build_mock_store
from dlens.train.config import DataConfig, Period
from dlens.train.dataset import StoreDataset, drop_members, store_normaliser

NO_METEO = Standardisation({}, {})  # these configs read no meteo predictor


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("train") / "mock.zarr")
    build_mock_store(url, datetime(2025, 3, 1), days=8, leads=(0, 24, 48))
    return url


def config(**changes) -> DataConfig:
    periods = {
        "train": Period(start=date(2025, 3, 1), end=date(2025, 3, 4)),
        "validation": Period(start=date(2025, 3, 5), end=date(2025, 3, 5)),
        "test": Period(start=date(2025, 3, 6), end=date(2025, 3, 8)),
    }
    return DataConfig(**{**periods, "static": False, **changes})


def inputs_of(sample: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs and median of one sample, as the training loop assembles a batch."""
    inputs, median = assemble_inputs(sample["members"][None], sample["static"][None], sample["time"][None])
    return inputs[0], median[0]


def test_splits_index_only_their_period(store):
    norm = store_normaliser(store)
    train = StoreDataset(store, config(), "train", norm, NO_METEO)
    test = StoreDataset(store, config(), "test", norm, NO_METEO)
    assert len(train) == 4 * 3 and len(test) == 3 * 3
    assert {str(r)[:10] for r, _ in train.samples} == {"2025-03-01", "2025-03-02", "2025-03-03", "2025-03-04"}
    assert not {r for r, _ in train.samples} & {r for r, _ in test.samples}


def test_sample_shapes_and_values(store):
    cfg = config(species=("o3", "pm10"))
    data = StoreDataset(store, cfg, "train", store_normaliser(store), NO_METEO)
    sample = data[5]
    assert sample["members"].shape == (2, len(MEMBERS), 16, 24) and sample["time"].shape == (5,)
    inputs, median = inputs_of(sample)
    names = channel_names(cfg.species, ())
    assert inputs.shape == (len(names), 16, 24)
    assert median.shape == sample["target"].shape == (2, 16, 24)
    assert inputs.dtype == torch.float32 and torch.isfinite(inputs).all()
    assert sample["mask"].all()
    # The mock store's members scatter around the analysis: the median is close to the target.
    assert (median - sample["target"]).abs().mean() < 0.2


def test_absent_member_is_masked(store):
    data = StoreDataset(store, config(species=("o3",)), "train", store_normaliser(store), NO_METEO)
    index = next(i for i, (run, _) in enumerate(data.samples) if str(run).startswith("2025-03-03"))
    inputs, _ = inputs_of(data[index])
    names = channel_names(("o3",), ())
    absent = names.index(f"o3:present:{MEMBERS[0]}")  # chimere is absent on day 2 of the mock store
    assert (inputs[absent] == 0).all() and (inputs[names.index("o3:present:dehm")] == 1).all()


def test_pickles_without_an_open_store(store):
    data = StoreDataset(store, config(), "validation", store_normaliser(store), NO_METEO)
    _ = data[0]
    clone = pickle.loads(pickle.dumps(data))
    assert clone._reader is None
    np.testing.assert_array_equal(clone[0]["target"].numpy(), data[0]["target"].numpy())


def test_training_mode_drops_members(store):
    data = StoreDataset(
        store, config(member_dropout=0.5), "train", store_normaliser(store), NO_METEO, training=True
    )
    names = channel_names(config().species, ())
    presence = [i for i, n in enumerate(names) if n.startswith("o3:present:")]
    counts = {int(inputs_of(data[0])[0][presence, 0, 0].sum()) for _ in range(10)}
    assert len(counts) > 1 and min(counts) >= 3


def test_member_dropout_is_reproducible_from_the_torch_seed(store):
    def dropped(seed: int) -> list[list[int]]:
        torch.manual_seed(seed)
        data = StoreDataset(
            store, config(member_dropout=0.5), "train", store_normaliser(store), NO_METEO, training=True
        )
        return [torch.isnan(data[i]["members"][0, :, 0, 0]).nonzero().flatten().tolist() for i in range(6)]

    assert dropped(7) == dropped(7) != dropped(8)


def test_empty_period_is_an_error(store):
    cfg = config(test=Period(start=date(2026, 1, 1), end=date(2026, 1, 2)))
    with pytest.raises(ValueError, match="no test sample"):
        StoreDataset(store, cfg, "test", store_normaliser(store), NO_METEO)


def test_s3_store_through_spawned_loader_workers(s3_bucket, tmp_path):
    """The same samples from a bucket over HTTP, read by DataLoader worker processes that open it lazily."""
    from torch.utils.data import DataLoader

    from dlens.train.loop import loader_options

    url = f"{s3_bucket}/mock.zarr"
    build_mock_store(url, datetime(2025, 3, 1), days=6, leads=(0, 24))
    data = config(static=True)
    local = str(tmp_path / "mock.zarr")
    build_mock_store(local, datetime(2025, 3, 1), days=6, leads=(0, 24))
    remote = StoreDataset(url, data, "train", store_normaliser(url), NO_METEO)
    batches = list(DataLoader(remote, batch_size=4, **loader_options(2)))
    expected = list(
        DataLoader(StoreDataset(local, data, "train", store_normaliser(local), NO_METEO), batch_size=4)
    )
    assert len(batches) == len(expected) == 2
    for got, want in zip(batches, expected):
        for key in want:
            torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, equal_nan=True, msg=key)


def test_member_dropout_is_shared_by_species_and_keeps_enough_members():
    rng = np.random.default_rng(1)
    raw = _members(rng, absent=(0,))
    for _ in range(50):
        out = drop_members(raw, rate=0.9, rng=rng, keep=3)
        kept = np.isfinite(out[0, :, 0, 0])
        assert kept.sum() >= 3 and not kept[0]
        np.testing.assert_array_equal(kept, np.isfinite(out[1, :, 0, 0]))
    assert np.isfinite(drop_members(raw, 0.0, rng)[:, 1:]).all()


def _members(rng, absent=()) -> np.ndarray:
    x = rng.gamma(4.0, 10.0, size=(2, 11, 6, 8)).astype(np.float32)
    x[:, list(absent)] = np.nan
    return x


def test_normaliser_of_the_training_period_sees_no_later_run(store):
    """Fitted from the training runs' ingest statistics alone: equal to a direct computation over their
    member fields, different from the store-wide one, and unmoved by what the test period holds."""
    from dlens.common.reader import StoreReader

    period = config().train
    norm = store_normaliser(store, period)
    reader = StoreReader(store)
    for species in ("o3", "pm10"):
        values = np.concatenate([
            reader.members(species, run, lead).ravel()
            for run in reader.complete_runs() if np.datetime64(run, "D") <= np.datetime64(period.end, "D")
            for lead in reader.spec.leads
        ])  # fmt: skip
        logs = np.log1p(values[np.isfinite(values)])
        assert norm.log1p_mean[species] == pytest.approx(logs.mean(), rel=1e-6)
        assert norm.log1p_std[species] == pytest.approx(logs.std(), rel=1e-4)
        assert norm.log1p_mean[species] != pytest.approx(
            store_normaliser(store).log1p_mean[species], rel=1e-6
        )
    with pytest.raises(ValueError, match="no normalisation statistics in 2024-01-01"):
        store_normaliser(store, Period(start=date(2024, 1, 1), end=date(2024, 1, 2)))
