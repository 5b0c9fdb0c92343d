"""`dlens-train export --onnx`: under ONNX Runtime, a bundle's model.onnx gives the fields `ensemble` gives with
torch, from the store's inputs, over the store's grid and a crop of it (HalfUNet, UNet, a HalfUNet with a
mixture head and every phase-two predictor); an architecture mfai does not export, and an export that fails
its check, exit non-zero and leave no bundle."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest
import torch

from dlens.common.reader import StoreReader
from dlens.model.architectures import SMALL_SETTINGS
from dlens.model.bundle import read_bundle
from dlens.model.inference import ensemble, model_inputs
from dlens.model.onnx_bundle import OnnxEnsemble
from dlens.model.registry import load_model
from dlens.model.static import static_fields
from dlens.testing.mock_store import build_mock_store
from dlens.train.cli import main
from dlens.train.config import TrainConfig
from dlens.train.dataset import store_normaliser
from dlens.train.loop import make_model
from dlens.train.predict import store_predictors
from dlens.train.predictor_stats import store_standardisation
from dlens.train.registry import publish

START = datetime(2025, 3, 1)
LEADS = (0, 12, 24)
SHAPE = (16, 24)
PERIODS = {
    "train": {"start": "2025-03-01", "end": "2025-03-03"},
    "validation": {"start": "2025-03-04", "end": "2025-03-04"},
    "test": {"start": "2025-03-05", "end": "2025-03-06"},
}
ALL = {"meteo": True, "meteo_change": True, "recent_analysis": True, "zenith": True, "statistics": True}
#: id -> architecture, settings, head, phase-two predictors.
EXPORTABLE = {
    "HalfUNet": ("HalfUNet", SMALL_SETTINGS["HalfUNet"], "correction", {}),
    "UNet": ("UNet", SMALL_SETTINGS["UNet"], "correction", {}),
    "HalfUNet-mixture-phase2": ("HalfUNet", {"num_filters": 8}, "mixture", ALL),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("onnx") / "mock.zarr")
    build_mock_store(url, START, days=6, leads=LEADS, meteo=True)
    return url


def published(url: str, architecture: str, settings: dict, head: str = "correction", predictors=None) -> str:
    """A randomly initialised model in the registry of `url`."""
    config = TrainConfig.model_validate({
        "name": f"onnx-{architecture.lower()}",
        "data": {"species": ["o3", "no2"], **PERIODS, "static": True, "loader_workers": 0,
                 "predictors": predictors or {}},
        "model": {"architecture": architecture, "settings": settings, "head": head},
        "optim": {"epochs": 1, "batch_size": 4},
    })  # fmt: skip
    stats = store_standardisation(url, config.data.train, config.data.predictors)
    torch.manual_seed(0)
    weights = make_model(config, SHAPE).state_dict()
    return publish(url, config, store_normaliser(url), stats, weights, SHAPE, {})


def export(url: str, model_id: str, out, *more: str) -> int:
    return main(["export", "--store", url, "--model", model_id, "--out", str(out), "--onnx", *more])


@pytest.mark.parametrize("case", EXPORTABLE)
def test_the_onnx_model_gives_the_fields_of_ensemble(store, tmp_path, capsys, case):
    architecture, settings, head, predictors = EXPORTABLE[case]
    bundle = tmp_path / "bundle"
    assert export(store, published(store, architecture, settings, head, predictors), bundle) == 0
    assert f"onnx: {bundle / 'model.onnx'}" in capsys.readouterr().out
    entry = read_bundle(str(bundle))
    record, channels = entry.card["onnx"], len(entry.card["input_channels"])
    assert (channels > 57) == bool(predictors)  # 2 × 24 per species, 4 static, 5 time; then the predictors'
    assert record["file"] == "model.onnx" and record["opset"] == 17
    assert record["input"]["name"] == "inputs" and record["output"]["name"] == "ensemble"
    assert record["input"]["shape"] == ["batch", channels, "height", "width"]
    assert record["output"]["shape"] == ["batch", 2, "height", "width"]
    check = record["check"]
    assert check["inputs"] == "run 2025-03-06T00, leads 0, 12 h of the store"
    assert check["shapes"] == [[2, channels, *SHAPE], [1, channels, 9, 13]]
    assert 0 <= check["max_abs_difference"] <= check["tolerance"] and check["tolerance"] >= 1e-4
    assert "`model.onnx` (ONNX opset 17)" in (bundle / "README.md").read_text()

    # Independently of the export's check: another run, every lead, the fields in µg/m³, on the store's grid
    # and on a crop of it (serve's sub-domains), through the bundle's weights and its model.onnx.
    reader, run = StoreReader(store), np.datetime64("2025-03-04T00")
    members = np.stack([[reader.members(sp, run, lead)[:, 0] for sp in entry.species] for lead in LEADS])
    encoded = np.stack([store_predictors(reader, entry, run, lead) for lead in LEADS])
    static = static_fields(reader, entry.static_names)
    valid = [run + np.timedelta64(lead, "h") for lead in LEADS]
    model, onnx = load_model(str(bundle), entry), OnnxEnsemble.from_bundle(str(bundle))
    for rows, cols in [(slice(None), slice(None)), (slice(2, 13), slice(3, 15))]:
        inputs = (members[..., rows, cols], static[:, rows, cols], encoded[..., rows, cols])
        expected = ensemble(model, entry, inputs[0], inputs[1], list(LEADS), valid, inputs[2])
        assembled, _ = model_inputs(
            inputs[0], entry.species, entry.normaliser, inputs[1], LEADS, valid, encoded=inputs[2],
            quantiles=entry.predictors.statistics_quantiles,
        )  # fmt: skip
        z = onnx(assembled.numpy())
        fields = np.stack([entry.normaliser.inverse(sp, z[:, k]) for k, sp in enumerate(entry.species)], 1)
        assert fields.shape == expected.shape == (len(LEADS), 2, *members[0, 0, 0, rows, cols].shape)
        assert np.abs(fields - expected).max() <= 1e-4 * max(1.0, float(expected.std()))
        median = np.nanmedian(members[..., rows, cols], axis=2)
        assert np.abs(expected - median).max() > 1e-2  # the network and its head at work, not the median


def test_an_architecture_mfai_does_not_export_is_refused_and_no_bundle_written(store, tmp_path, capsys):
    model_id = published(store, "SwinUNetR", SMALL_SETTINGS["SwinUNetR"])
    assert export(store, model_id, tmp_path / "bundle") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("dlens-train: error: --onnx:")
    assert f"model {model_id} is a SwinUNetR" in err and "exportable: HalfUNet, Segformer, UNet" in err
    assert not (tmp_path / "bundle").exists()


def test_an_export_whose_onnx_model_differs_from_torch_fails_and_writes_nothing(
    store, tmp_path, capsys, monkeypatch
):
    model_id = published(store, "HalfUNet", SMALL_SETTINGS["HalfUNet"])
    run = OnnxEnsemble.__call__

    def off(self, inputs):  # ONNX Runtime's output, 1.5 tolerances off
        z = run(self, inputs)
        return z + 1.5e-4 * max(1.0, float(z.std()))

    monkeypatch.setattr(OnnxEnsemble, "__call__", off)
    assert export(store, model_id, tmp_path / "bundle") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"ONNX export of model {model_id} failed its check, no bundle written" in err
    assert "ONNX Runtime differs from torch by" in err and "over the tolerance" in err
    assert not (tmp_path / "bundle").exists()


def test_a_store_without_runs_checks_on_seeded_random_inputs(store, tmp_path, monkeypatch):
    model_id = published(store, "HalfUNet", SMALL_SETTINGS["HalfUNet"])
    monkeypatch.setattr(StoreReader, "complete_runs", lambda self, species=None: [])
    assert export(store, model_id, tmp_path / "bundle") == 0
    check = json.loads((tmp_path / "bundle" / "model.json").read_text())["onnx"]["check"]
    assert check["inputs"].startswith("seeded random inputs") and check["shapes"][0][2:] == list(SHAPE)
    assert check["max_abs_difference"] <= check["tolerance"]
