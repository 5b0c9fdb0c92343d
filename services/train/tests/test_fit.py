"""Ray Train on the local cluster: a two-worker DDP fit publishes a model tracked in MLflow, survives a
killed worker, and its predictions are written as a product that evaluate can score."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
import zarr
from ray.util.state import list_actors
from safetensors import safe_open

from dlens.common.layout import FORECASTS, STATUS, Status
from dlens.common.lock import acquire, read_lock, release
from dlens.common.reader import StoreReader
from dlens.common.species import EARLY_MEMBERS, MEMBERS
from dlens.model.bundle import FILES, read_bundle
from dlens.model.registry import entries, load_model, resolve
from dlens.testing.mock_store import MockSkill, build_mock_store
from dlens.train.cli import main
from dlens.train.config import TrainConfig
from dlens.train.fit import fit
from dlens.train.predict import predict
from dlens.train.tracking import client as tracking_client
from dlens.train.tracking import runs_of_model

ABSENT = ((2, 0), (6, 3), (6, 5))
CONFIG = {
    "name": "ddp",
    "data": {
        "species": ["o3", "no2"],
        "train": {"start": "2025-03-01", "end": "2025-03-05"},
        "validation": {"start": "2025-03-06", "end": "2025-03-06"},
        "test": {"start": "2025-03-07", "end": "2025-03-08"},
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}},
    "optim": {"epochs": 3, "batch_size": 4},
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    url = str(tmp_path_factory.mktemp("fit") / "mock.zarr")
    # Two members are absent on 2025-03-07, a test-period run.
    build_mock_store(url, datetime(2025, 3, 1), days=8, leads=(0, 24, 48), skill=MockSkill(absent=ABSENT))
    return url


def test_two_worker_ddp_fit_publishes_a_model(store, tmp_path, ray_cluster, monkeypatch):
    monkeypatch.chdir(Path(store).parent)  # relative paths, as `make demo` gives them: workers run elsewhere
    model_id = fit(Path(store).name, TrainConfig.model_validate(CONFIG), workers=2, storage="ray-results")
    entry = resolve(store, "latest")
    assert entry.model_id == model_id and [e.model_id for e in entries(store)] == [model_id]
    card = entry.card
    assert card["architecture"] == "HalfUNet" and card["periods"]["test"]["start"] == "2025-03-07"
    assert card["validation"]["epoch"] >= 1 and np.isfinite(card["validation"]["val_loss"])
    assert card["validation"]["last"]["epoch"] == 3
    model = load_model(store, entry)
    assert sum(p.numel() for p in model.parameters()) > 0
    # Its MLflow run: found by the model id, the config as parameters and artifact, every epoch's metrics.
    (run,) = runs_of_model(model_id)
    assert card["mlflow_run_id"] == run.info.run_id and run.info.status == "FINISHED"
    assert run.data.params["model.architecture"] == "HalfUNet" and run.data.params["optim.epochs"] == "3"
    mlflow = tracking_client()
    for metric in ("train_loss", "val_loss", "val_ratio"):
        history = mlflow.get_metric_history(run.info.run_id, metric)
        assert sorted(m.step for m in history) == [1, 2, 3], metric
    val_loss = {m.step: m.value for m in mlflow.get_metric_history(run.info.run_id, "val_loss")}
    assert card["validation"]["val_loss"] == pytest.approx(val_loss[card["validation"]["epoch"]])
    assert card["validation"]["val_loss"] == pytest.approx(min(val_loss.values()))
    logged = yaml.safe_load(
        Path(mlflow.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path))).read_text()
    )
    assert logged == card["config"]


def _kill_a_worker_after_first_checkpoint(storage: Path, killed: list[int], errors: list[Exception]) -> None:
    """SIGKILL one Ray Train worker of this session's cluster (its State API: not a worker of another Ray on
    the machine, such as a benchmark's) once the run has written its first checkpoint."""
    deadline = time.time() + 300
    while time.time() < deadline and not list(storage.rglob("checkpoint_*/state.pt")):
        time.sleep(0.2)
    time.sleep(3)  # let the controller register the reported checkpoint
    try:
        workers = list_actors(filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
    except Exception as exc:  # re-raised by the test, not lost with the thread
        errors.append(exc)
        return
    for worker in workers:
        if not worker.pid:  # an actor not yet started has pid 0, which would name our process group
            continue
        try:
            os.kill(worker.pid, signal.SIGKILL)
            killed.append(worker.pid)
            return
        except OSError:  # the process ended meanwhile
            continue


@pytest.mark.slow
def test_killed_worker_resumes_from_its_checkpoint(store, tmp_path, ray_cluster):
    config = TrainConfig.model_validate({**CONFIG, "name": "resume", "optim": {"epochs": 5, "batch_size": 4}})
    storage = tmp_path / "ray"
    killed: list[int] = []
    errors: list[Exception] = []
    killer = threading.Thread(target=_kill_a_worker_after_first_checkpoint, args=(storage, killed, errors))
    killer.start()
    model_id = fit(store, config, workers=2, storage=str(storage))
    killer.join()
    if errors:
        raise errors[0]
    assert killed, "no Ray Train worker process was found to kill"
    last = resolve(store, model_id).card["validation"]["last"]
    # The restarted group resumed from a checkpoint rather than from scratch.
    assert last["epoch"] == 5 and last["start_epoch"] >= 1, f"killed {killed}, last report {last}"


def test_predict_writes_a_product_with_members_missing(store, ray_cluster, capsys):
    if not entries(store):
        fit(store, TrainConfig.model_validate(CONFIG), workers=1)
    assert main(["--no-progress", "predict", "--store", store, "--model", "latest",
                 "--start", "2025-03-07", "--days", "2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    name = out.split("products/")[1].split()[0]
    reader = StoreReader(store)
    assert reader.member_presence("o3", np.datetime64("2025-03-07T00", "h")).sum() == 9
    for day in ("2025-03-07", "2025-03-08"):
        run = np.datetime64(f"{day}T00", "h")
        field = reader.product(name, "o3", run, 24)
        assert field is not None and np.isfinite(field).all() and (field >= 0).all()
    assert main(["models", "--store", store]) == 0
    assert entries(store)[-1].model_id in capsys.readouterr().out


def test_predict_updates_a_run_as_its_members_arrive(store, ray_cluster, tmp_path, capsys):
    """Operational mode: the first six CTMs in → a DL-ENS; the rest in → the same run predicted again, now
    equal to a prediction from all eleven; nothing new → nothing redone."""
    if not entries(store):
        fit(store, TrainConfig.model_validate(CONFIG), workers=1)
    url = str(tmp_path / "operational.zarr")
    shutil.copytree(store, url)
    run, day = np.datetime64("2025-03-08T00", "h"), ["--start", "2025-03-08", "--days", "1"]
    late = [k for k, m in enumerate(MEMBERS) if m not in EARLY_MEMBERS]
    status = zarr.open_group(url)[f"{FORECASTS}/{STATUS}"]
    pos = StoreReader(url).axis(FORECASTS)[run]
    delivered = status[pos].copy()
    status[pos, late] = int(Status.PENDING)  # the late CTMs have not arrived

    def predict_(*extra: str) -> tuple[str, str]:
        assert main(["--no-progress", "predict", "--store", url, *day, *extra]) == 0
        out = capsys.readouterr().out
        return out.split("products/")[1].split()[0], out

    def used(name: str) -> np.ndarray:
        return zarr.open_group(url)[f"products/{name}/members_used"][
            StoreReader(url).axis(f"products/{name}")[run]
        ]

    name, out = predict_("--product", "operational")  # a product of its own (the store has dlens-<id>)
    assert "1 predicted now" in out
    assert (used(name)[0] == np.isin(MEMBERS, EARLY_MEMBERS)).all()
    first = StoreReader(url).product(name, "o3", run, 24)
    assert np.isfinite(first).all()
    assert "0 predicted now" in predict_("--product", name)[1]  # nothing arrived: nothing redone

    status[pos] = delivered  # the late CTMs arrive
    assert "1 predicted now" in predict_("--product", name)[1]
    assert used(name)[0].all()
    updated = StoreReader(url).product(name, "o3", run, 24)
    assert np.abs(updated - first).max() > 0
    full, _ = predict_("--members", "all", "--product", "check-all")
    np.testing.assert_array_equal(StoreReader(url).product(full, "o3", run, 24), updated)

    early, _ = predict_("--members", "early")
    assert (
        early == f"dlens-{resolve(url, 'latest').model_id}-early"
        and (used(early)[0] == np.isin(MEMBERS, EARLY_MEMBERS)).all()
    )
    np.testing.assert_array_equal(StoreReader(url).product(early, "o3", run, 24), first)


def test_predict_one_lead_per_forward_pass_equals_all_leads_at_once(store, ray_cluster, tmp_path):
    """A batch of one lead (the full grid's default), with the next read while the model runs, writes the
    fields of one batch of every lead."""
    if not entries(store):
        fit(store, TrainConfig.model_validate(CONFIG), workers=1)
    url = str(tmp_path / "batches.zarr")
    shutil.copytree(store, url)
    runs = [np.datetime64("2025-03-07T00", "h"), np.datetime64("2025-03-08T00", "h")]
    model_id = resolve(url, "latest").model_id
    one, _, report = predict(url, model_id, runs, product="one-lead", batch_cells=1)
    every, _, _ = predict(
        url, model_id, runs, product="every-lead"
    )  # 8 leads per pass: the store's 3 at once
    assert not report.failed
    reader = StoreReader(url)
    for run in runs:
        for sp in ("o3", "no2"):
            for lead in (0, 24, 48):
                field = reader.product(one, sp, run, lead)
                assert field is not None and np.isfinite(field).all()
                np.testing.assert_array_equal(field, reader.product(every, sp, run, lead))


def test_predict_refuses_unknown_members(store, capsys):
    day = ["predict", "--store", store, "--start", "2025-03-08", "--days", "1"]
    with pytest.raises(SystemExit) as exited:  # argparse: the usage and the message, exit 2
        main([*day, "--members", "emep,nope"])
    assert exited.value.code == 2 and "unknown members ['nope']" in capsys.readouterr().err
    assert main([*day, "--members", "emep"]) == 2
    assert "needs a product name (--product)" in capsys.readouterr().err


def test_predict_refuses_in_one_line_while_another_writer_holds_the_store(store, capsys):
    holder = acquire(store, "dlens-ingest synthetic --store S (another writer)")
    try:
        argv = ["--no-progress", "predict", "--store", store, "--start", "2025-03-07", "--days", "1",
                "--product", "locked-out"]  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert "is locked by another writer" in err and "(another writer)" in err
        assert len(err.splitlines()) == 1
        assert read_lock(store) == holder  # left to its owner
        assert not (Path(store) / "products" / "locked-out").exists()
    finally:
        release(store, holder)


def test_export_writes_a_bundle_that_loads_without_the_registry(store, ray_cluster, tmp_path, capsys):
    if not entries(store):
        fit(store, TrainConfig.model_validate(CONFIG), workers=1)
    entry = resolve(store, "latest")
    # A verification report in the store that scored the model: its test scores go into the card.
    report = Path(store) / "reports" / "r1"
    report.mkdir(parents=True)
    overall = {"lead_block": "all", "region": "domain", "season": "all", "lead": None}
    rows = [overall | {"product": p, "species": "o3", "rmse": v}
            for p, v in ((f"dlens-{entry.model_id}", 1.5), ("median", 2.0), ("weighted", 1.8))]  # fmt: skip
    meta = {"created": "2026-01-01T00:00:00", "period": {"start": "2025-03-07", "days": 2, "runs": []}}
    (report / "metrics.json").write_text(json.dumps({"meta": meta, "continuous": rows}))
    out = tmp_path / "bundle"
    assert main(["--no-progress", "export", "--store", store, "--out", str(out)]) == 0
    assert f"bundle: {out} (model {entry.model_id}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    card = (out / "README.md").read_text()
    assert (
        "## Intended use" in card
        and "2025-03-01 to 2025-03-05" in card
        and "| o3 | 1.500 | 2.000 | 1.800 |" in card
    )
    assert yaml.safe_load((out / "config.yaml").read_text()) == entry.card["config"]
    with safe_open(str(out / "weights.safetensors"), "pt") as weights:  # plain tensors, no pickle
        assert weights.metadata()["model_id"] == entry.model_id
    bundled = read_bundle(str(out))
    assert bundled.model_id == entry.model_id and bundled.card["test_scores"][0]["dlens"] == 1.5
    registry_state, bundle_state = (
        load_model(store, entry).state_dict(),
        load_model("unused", bundled).state_dict(),
    )
    assert all(torch.equal(registry_state[k], bundle_state[k]) for k in registry_state)
    assert main(["--no-progress", "export", "--store", store, "--out", str(out)]) == 2  # never overwritten
    assert "exists" in capsys.readouterr().err
