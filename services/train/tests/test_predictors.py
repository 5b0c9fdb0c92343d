"""The phase-two predictors in training and prediction: each predictor's channels equal a hand computation
from the store, the recent analysis reads nothing valid after the run's availability time, a store lacking a
predictor is named, and a model with every predictor fits, registers and predicts."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import torch

from dlens.common.layout import METEO, METEO_VARIABLES, Status
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.common.writer import FieldWriter, StoreCoordinator
from dlens.model.bundle import read_bundle
from dlens.model.features import assemble_inputs, channel_names
from dlens.model.inference import ensemble, model_inputs
from dlens.model.predictors import Predictors, Standardisation, encoded_names
from dlens.model.registry import load_model, resolve
from dlens.model.static import static_fields
from dlens.testing.mock_store import build_mock_store, mock_meteo
from dlens.train.config import DataConfig, Period, TrainConfig
from dlens.train.dataset import StoreDataset, store_normaliser
from dlens.train.export import export
from dlens.train.fit import fit
from dlens.train.loop import make_model
from dlens.train.predict import predict, predict_unit, store_predictors
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

START = datetime(2025, 3, 1)
LEADS = (0, 12, 24)
SPECIES = ("o3", "no2")
PERIODS = {
    "train": {"start": "2025-03-01", "end": "2025-03-03"},
    "validation": {"start": "2025-03-04", "end": "2025-03-04"},
    "test": {"start": "2025-03-05", "end": "2025-03-06"},
}
ALL = {"meteo": True, "meteo_change": True, "recent_analysis": True, "zenith": True, "statistics": True}
PHASE2 = {
    "name": "phase2-tiny",
    "data": {"species": list(SPECIES), **PERIODS, "static": False, "loader_workers": 0, "predictors": ALL},
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
    "optim": {"epochs": 1, "batch_size": 4},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("predictors") / "mock.zarr")
    build_mock_store(url, START, days=6, leads=LEADS, meteo=True)
    return url


@pytest.fixture(scope="module")
def without_meteo(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("predictors") / "no-meteo.zarr")
    build_mock_store(url, START, days=6, leads=LEADS)
    return url


NO_METEO = Standardisation({}, {})


def data_config(**predictors) -> DataConfig:
    periods = {k: Period.model_validate(v) for k, v in PERIODS.items()}
    return DataConfig(species=SPECIES, **periods, static=False, predictors=Predictors(**predictors))


def standardisation(url: str, config: DataConfig) -> Standardisation:
    return store_standardisation(url, config.train, config.predictors)


class RecordingReader(StoreReader):
    """A store reader that records the valid times and levels of the analysis fields it reads one by one,
    and counts its meteo reads."""

    def __init__(self, url: str):
        super().__init__(url)
        self.analysis_times: list[np.datetime64] = []
        self.levels: list[int | None] = []
        self.meteo_reads = 0

    def analysis(
        self, species: str, valid_time: np.datetime64, level: int | None = None
    ) -> np.ndarray | None:
        self.analysis_times.append(np.datetime64(valid_time, "h"))
        self.levels.append(level)
        return super().analysis(species, valid_time, level)

    def meteo(self, variable: str, run: np.datetime64, lead: int) -> np.ndarray | None:
        self.meteo_reads += 1
        return super().meteo(variable, run, lead)


@pytest.mark.parametrize("delay", [1, 5])
def test_recent_analysis_is_the_analysis_before_the_run_as_available_then(store, delay):
    data = StoreDataset(
        store,
        data_config(recent_analysis=True, analysis_delay_h=delay),
        "train",
        store_normaliser(store),
        NO_METEO,
    )
    data._reader = RecordingReader(store)
    hours = data.config.predictors.analysis_hours
    assert max(hours) == delay + 21 and min(hours) == delay  # every 3 h over 24 h, the last `delay` h back
    for index, (run, _) in enumerate(data.samples):
        data._reader.analysis_times.clear()
        first_lead = run not in data._shared
        channels = data[index]["predictors"].numpy()
        # the run's hours of each species read once, at its first lead: nothing valid after the run's
        # availability time (the target is read apart, by `sample`)
        expected_reads = sorted(run - np.timedelta64(h, "h") for h in hours for _ in SPECIES)
        assert sorted(data._reader.analysis_times) == (expected_reads if first_lead else [])
        names = [f"analysis:{sp}:-{h}h" for sp in SPECIES for h in hours]
        assert channels.shape == (len(names), 16, 24)
        channel = dict(zip(names, channels))
        for sp in SPECIES:
            for h in hours:
                analysis = data.reader.analysis(sp, run - np.timedelta64(h, "h"))[0]
                expected = data.normaliser.forward(sp, analysis)
                np.testing.assert_allclose(channel[f"analysis:{sp}:-{h}h"], expected, atol=1e-5)
    # the runs whose oldest analysis hour precedes the store's first analysis are not indexed
    first = min(run for run, _ in data.samples)
    assert first == np.datetime64("2025-03-02T00" if delay + 21 <= 24 else "2025-03-03T00")


def test_the_dataset_keeps_the_shared_predictors_of_runs_within_its_cache_bound(store, monkeypatch):
    config = data_config(recent_analysis=True)
    data = StoreDataset(store, config, "train", store_normaliser(store), NO_METEO)
    runs = sorted({run for run, _ in data.samples})
    assert len(runs) >= 2
    first = {run: data.run_predictors(run).recent_analysis for run in runs}
    assert list(data._shared) == runs  # every run kept: the demo-sized fields fit
    assert all(data.run_predictors(run).recent_analysis is first[run] for run in runs)  # not reread
    monkeypatch.setattr("dlens.train.dataset.SHARED_CACHE_BYTES", 1)
    data._shared.clear()
    for run in runs:
        np.testing.assert_array_equal(data.run_predictors(run).recent_analysis, first[run])
    assert list(data._shared) == runs[-1:]  # over the bound: only the last run read is kept


def test_meteo_channels_are_standardised_over_the_training_runs(store):
    config = data_config(meteo=True, meteo_change=True, zenith=True)
    data = StoreDataset(store, config, "train", store_normaliser(store), standardisation(store, config))
    # by hand: the mock store's meteo over the training runs (every run: it has meteo from the first day)
    yy, xx = np.meshgrid(np.linspace(0, 1, 16), np.linspace(0, 1, 24), indexing="ij")
    pattern = 1.0 + 0.5 * np.sin(3 * xx + 1.0) * np.cos(2 * yy)
    runs = [START + timedelta(days=d) for d in range(3)]
    run, lead = data.samples[-1]
    names = channel_names(SPECIES, (), config.predictors)[-11:]  # meteo, its change, zenith
    channel = dict(zip(names, data[len(data) - 1]["predictors"]))
    for index, name in enumerate(METEO_VARIABLES):
        at = {(r, h): mock_meteo(index, r, h, pattern).astype(np.float64) for r in runs for h in LEADS}
        values = np.stack(list(at.values()))
        changes = np.stack([at[r, h] - at[r, 0] for r, h in at])
        field = mock_meteo(index, run.astype(datetime), lead, pattern).astype(np.float64)
        # the run before forecasts the same valid time otherwise: reading its meteo would fail below
        earlier = mock_meteo(index, run.astype(datetime) - timedelta(days=1), lead + 24, pattern)
        assert np.abs(earlier - field).max() > 1e-3 * np.abs(field).max()
        expected = (field - values.mean()) / values.std()
        np.testing.assert_allclose(channel[f"meteo:{name}"].numpy(), expected, rtol=1e-4, atol=1e-4)
        change = field - mock_meteo(index, run.astype(datetime), 0, pattern)
        expected = (change - changes.mean()) / changes.std()
        np.testing.assert_allclose(channel[f"meteo_change:{name}"].numpy(), expected, rtol=1e-4, atol=1e-4)
    assert channel["zenith:cos"].shape == (16, 24)


def test_nan_in_the_store_meteo_is_zero_filled_after_standardising(store, tmp_path):
    # a gap in a committed meteo field: its channels are 0 there (the training mean), not NaN
    url = str(tmp_path / "gap.zarr")
    shutil.copytree(store, url)
    reader = StoreReader(url)
    config = data_config(meteo=True, meteo_change=True)
    data = StoreDataset(url, config, "train", store_normaliser(url), standardisation(url, config))
    index = len(data) - 1
    run, lead = data.samples[index]
    gap = reader.meteo("t2m", run, lead).copy()
    gap[3, 4] = np.nan
    FieldWriter(url).write(METEO, "t2m", (reader.axis(METEO)[run], reader.lead_index[lead]), gap)
    names = encoded_names(SPECIES, config.predictors)
    channel = dict(zip(names, data[index]["predictors"].numpy()))
    assert all(np.isfinite(c).all() for c in channel.values())
    assert channel["meteo:t2m"][3, 4] == 0 and channel["meteo_change:t2m"][3, 4] == 0
    assert channel["meteo:t2m"][3, 5] != 0


def test_training_on_a_store_without_meteo_says_so(without_meteo):
    with pytest.raises(ValueError, match="no meteo for the training runs"):
        standardisation(without_meteo, data_config(meteo=True))


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_predict_names_a_predictor_the_store_lacks_or_runs_without_it(without_meteo, store, dropout):
    predictors = ALL | {"dropout": dropout}
    config = TrainConfig.model_validate(PHASE2 | {"data": PHASE2["data"] | {"predictors": predictors}})
    # the meteo statistics from the store that has them, the model published in the one that has none
    stats = store_standardisation(store, config.data.train, config.data.predictors)
    weights, normaliser = make_model(config, (16, 24)).state_dict(), store_normaliser(without_meteo)
    model_id = publish(without_meteo, config, normaliser, stats, weights, (16, 24), {})
    entry = resolve(without_meteo, model_id)
    reader = StoreReader(without_meteo)
    run = np.datetime64("2025-03-05T00")
    if dropout == 0:
        with pytest.raises(ValueError, match=r"needs predictor 'meteo'.*which store .* lacks"):
            store_predictors(reader, entry, run, 12)
        return
    encoded = store_predictors(reader, entry, run, 12)
    channels = dict(zip(entry.card["predictors"]["channels"][-3:], encoded[-3:]))
    assert (channels["present:meteo"] == 0).all() and (channels["present:meteo_change"] == 0).all()
    assert (channels["present:recent_analysis"] == 1).all()


def test_a_model_with_every_predictor_fits_registers_and_predicts(store, ray_cluster, monkeypatch, tmp_path):
    monkeypatch.chdir(Path(store).parent)
    config = TrainConfig.model_validate(PHASE2)
    computed = []

    def shifted(*args) -> Standardisation:  # the store's statistics, recognisably moved
        stats = store_standardisation(*args)
        meteo = {v: {"mean": s["mean"] + 1.0, "std": s["std"]} for v, s in stats.meteo.items()}
        computed.append(Standardisation(meteo, stats.meteo_change))
        return computed[-1]

    monkeypatch.setattr("dlens.train.fit.store_standardisation", shifted)
    model_id = fit(store, config, workers=1, storage="ray-results")
    entry = resolve(store, model_id)
    card = entry.card
    # computed once, and the card records the statistics the workers trained with
    assert len(computed) == 1 and entry.encoder.standardisation == computed[0]
    assert entry.predictors == config.data.predictors
    assert card["input_channels"] == channel_names(SPECIES, (), config.data.predictors)
    assert card["predictors"]["enabled"] == list(ALL)
    assert card["predictors"]["analysis_hours_before_run"] == [22, 19, 16, 13, 10, 7, 4, 1]
    assert set(card["predictors"]["normalisation"]["meteo"]) == set(METEO_VARIABLES)
    run = np.datetime64("2025-03-05T00")
    name, done, report = predict(store, model_id, [run])
    assert [np.datetime64(r, "h") for r in done] == [run] and not report.failed
    # the product is the model's prediction from the store's members and predictors, in this process
    reader = StoreReader(store)
    members = np.stack([np.stack([reader.members(sp, run, lead)[:, 0] for sp in SPECIES]) for lead in LEADS])
    encoded = np.stack([store_predictors(reader, entry, run, lead) for lead in LEADS])
    valid = [run + np.timedelta64(lead, "h") for lead in LEADS]
    static = static_fields(reader, entry.static_names)
    expected = ensemble(load_model(store, entry), entry, members, static, list(LEADS), valid, encoded)
    for k, sp in enumerate(SPECIES):
        for li, lead in enumerate(LEADS):
            np.testing.assert_allclose(reader.product(name, sp, run, lead)[0], expected[li, k], rtol=1e-5)
    # its bundle carries the predictors: the same encoder, and the model card says which
    _, bundle = export(store, model_id, tmp_path / "bundle")
    assert read_bundle(str(bundle)).encoder == entry.encoder
    assert (
        "Phase-two predictors: meteo, meteo_change, recent_analysis, zenith, statistics"
        in (bundle / "README.md").read_text()
    )


def test_the_dataset_and_predict_build_the_same_inputs(store):
    # training and inference inputs of a published phase-two entry, for the same (run, lead): the encoded
    # predictors the loader delivers are those predict reads, and the assembled inputs (member statistics
    # included) are those the model gets in predict
    config = TrainConfig.model_validate(PHASE2 | {"data": PHASE2["data"] | {"static": True}})
    normaliser, stats = store_normaliser(store, config.data.train), standardisation(store, config.data)
    weights = make_model(config, (16, 24)).state_dict()
    entry = resolve(store, publish(store, config, normaliser, stats, weights, (16, 24), {}))
    data = StoreDataset(store, config.data, "test", normaliser, stats)
    reader = StoreReader(store)
    static = static_fields(reader, entry.static_names)
    quantiles = entry.predictors.statistics_quantiles
    assert quantiles is not None
    for index in (0, len(data) - 1):
        run, lead = data.samples[index]
        sample = data[index]
        encoded = store_predictors(reader, entry, run, lead)
        np.testing.assert_array_equal(sample["predictors"].numpy(), encoded)
        batch = {k: sample[k][None] for k in ("members", "static", "time", "predictors")}
        trained, _ = assemble_inputs(
            batch["members"], batch["static"], batch["time"], batch["predictors"], quantiles
        )
        members = np.stack([reader.members(sp, run, lead)[:, 0] for sp in SPECIES])
        valid = run + np.timedelta64(lead, "h")
        served, _ = model_inputs(
            members[None], entry.species, entry.normaliser, static, [lead], [valid], encoded=encoded[None],
            quantiles=quantiles,
        )  # fmt: skip
        assert trained.shape[1] == len(entry.card["input_channels"])
        np.testing.assert_allclose(trained.numpy(), served.numpy(), atol=1e-6)


def test_predictor_dropout_zeroes_channels_and_presence_at_its_rate(store):
    config = data_config(meteo=True, meteo_change=True, recent_analysis=True, dropout=0.3)
    torch.manual_seed(0)
    data = StoreDataset(
        store, config, "train", store_normaliser(store), standardisation(store, config), training=True
    )
    names = encoded_names(SPECIES, config.predictors)
    index = len(data) - 1  # a lead > 0: the meteo change is not 0
    prefixes = {"meteo": "meteo:", "meteo_change": "meteo_change:", "recent_analysis": "analysis:"}
    draws, kept = 200, {name: [] for name in prefixes}
    for _ in range(draws):
        channel = dict(zip(names, data[index]["predictors"].numpy()))
        for name, prefix in prefixes.items():
            present = np.unique(channel[f"present:{name}"])
            block = np.stack([c for n, c in channel.items() if n.startswith(prefix)])
            assert len(present) == 1 and (block == 0).all() == (present[0] == 0), name
            kept[name].append(present[0] == 1)
    rate = {name: 1 - np.mean(k) for name, k in kept.items()}
    assert rate["meteo"] == pytest.approx(0.3, abs=0.11)
    assert rate["recent_analysis"] == pytest.approx(0.3, abs=0.11)
    # dropping the meteo drops its change (a request without meteo has neither): 1 − 0.7² of the draws
    assert all(c <= m for m, c in zip(kept["meteo"], kept["meteo_change"]))
    assert rate["meteo_change"] == pytest.approx(0.51, abs=0.12)


def test_predict_refreshes_a_dropout_product_once_a_missing_predictor_arrives(
    store, without_meteo, ray_cluster, tmp_path
):
    url = str(tmp_path / "late-meteo.zarr")
    shutil.copytree(without_meteo, url)
    config = TrainConfig.model_validate(
        PHASE2 | {"data": PHASE2["data"] | {"predictors": ALL | {"dropout": 0.3}}}
    )
    stats = standardisation(store, config.data)
    weights = make_model(config, (16, 24)).state_dict()
    model_id = publish(url, config, store_normaliser(url), stats, weights, (16, 24), {})
    run = np.datetime64("2025-03-05T00")

    def predicted() -> list[np.datetime64]:
        _, done, report = predict(url, model_id, [run])
        assert not report.failed
        return [np.datetime64(r, "h") for r in done]

    def used() -> list[float]:
        reader = StoreReader(url)
        path = f"products/dlens-{model_id}"
        return reader.root[f"{path}/predictors_used"][reader.axis(path)[run]].tolist()

    assert predicted() == [run] and used() == [0, 0, 1]  # without the meteo
    assert predicted() == []  # nothing new
    source, coordinator, writer = StoreReader(store), StoreCoordinator(url), FieldWriter(url)
    (pos,) = coordinator.ensure_axis(METEO, [run.astype(datetime)])
    for variable in METEO_VARIABLES:
        for li, lead in enumerate(LEADS):
            writer.write(METEO, variable, (pos, li), source.meteo(variable, run, lead))
    coordinator.mark(METEO, pos, Status.COMPLETE)  # the run's meteo arrives
    assert predicted() == [run] and used() == [1, 1, 1]
    reader, entry = StoreReader(url), resolve(url, model_id)
    members = np.stack([reader.members(sp, run, 12)[:, 0] for sp in SPECIES])
    encoded = store_predictors(reader, entry, run, 12)
    valid = run + np.timedelta64(12, "h")
    expected = ensemble(
        load_model(url, entry), entry, members[None], np.zeros((0, 16, 24)), [12], [valid], encoded[None]
    )
    np.testing.assert_allclose(
        reader.product(f"dlens-{model_id}", "o3", run, 12)[0], expected[0, 0], rtol=1e-5
    )
    assert predicted() == []


def test_predict_reads_the_recent_analysis_and_the_meteo_at_the_run_once_per_run(
    store, ray_cluster, monkeypatch, tmp_path
):
    url = str(tmp_path / "reads.zarr")
    shutil.copytree(store, url)
    config = TrainConfig.model_validate(PHASE2)
    weights = make_model(config, (16, 24)).state_dict()
    model_id = publish(
        url, config, store_normaliser(url), standardisation(url, config.data), weights, (16, 24), {}
    )
    run = np.datetime64("2025-03-05T00")
    name, done, _ = predict(url, model_id, [run])
    assert done == [run]
    readers: list[RecordingReader] = []

    class Recording(RecordingReader):
        def __init__(self, url: str):
            super().__init__(url)
            readers.append(self)

    monkeypatch.setattr("dlens.train.predict.StoreReader", Recording)
    position = StoreReader(url).axis(f"products/{name}")[run]
    predict_unit(url, model_id, name, str(run), position, MEMBERS)
    (reader,) = readers
    hours = config.data.predictors.analysis_hours
    # every analysis hour of each species once, level 0 only; the meteo at each lead, and at the run once
    assert sorted(reader.analysis_times) == sorted(
        run - np.timedelta64(h, "h") for h in hours for _ in SPECIES
    )
    assert set(reader.levels) == {0}
    assert reader.meteo_reads == len(METEO_VARIABLES) * (len(LEADS) + 1)


def test_predict_writes_only_the_leads_a_model_was_trained_on(store, ray_cluster, tmp_path):
    url = str(tmp_path / "leads.zarr")
    shutil.copytree(store, url)
    config = TrainConfig.model_validate(
        PHASE2 | {"data": {**PHASE2["data"], "predictors": {}, "leads": [12]}}
    )
    weights = make_model(config, (16, 24)).state_dict()
    model_id = publish(url, config, store_normaliser(url), NO_METEO, weights, (16, 24), {})
    run = np.datetime64("2025-03-05T00")
    name, done, report = predict(url, model_id, [run])
    assert done == [run] and not report.failed
    reader = StoreReader(url)
    assert np.isfinite(reader.product(name, "o3", run, 12)).all()
    for lead in (0, 24):  # not trained on: not predicted
        field = reader.product(name, "o3", run, lead)
        assert field is None or not np.isfinite(field).any()
