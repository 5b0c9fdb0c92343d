"""`dlens-ingest synthetic` end to end: valid stores locally and on S3, idempotent, crash-safe."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import zarr

from dlens.common.grid import parse_domain
from dlens.common.layout import ANALYSIS, FORECASTS, METEO, Status
from dlens.common.lock import read_lock
from dlens.common.schema import validate_store
from dlens.common.store import open_dataset, open_store
from dlens.common.writer import StoreSpec
from dlens.ingest.cli import main
from dlens.ingest.synthetic_ingest import SyntheticRequest, ingest_synthetic
from dlens.testing.plugin import tree_digest

TINY = StoreSpec(parse_domain("tiny"), (0, 6, 12, 24), (0,))
START = datetime(2025, 7, 1)


def request(store: str, days: int = 2, species=("o3", "no2", "so2", "pm10")) -> SyntheticRequest:
    return SyntheticRequest(store, TINY, START, days, tuple(species), seed=3)


def chunk_digest(store: Path) -> dict[str, str]:
    """Digest of every array's data (chunks), not its metadata."""
    return tree_digest(store, include=lambda p: p.name != "zarr.json")


def test_local_store_is_valid_and_complete(tmp_path, ray_cluster):
    store = str(tmp_path / "s.zarr")
    report = ingest_synthetic(request(store))
    assert report.failed == [] and report.done > 0
    assert validate_store(store, deep=True) == []
    fc = open_dataset(store, FORECASTS)
    assert fc.sizes["run"] == 2 and fc.sizes["member"] == 11
    status = fc["ingest_status"].values
    assert (
        set(np.unique(status)) <= {Status.COMPLETE, Status.ABSENT}
        and (status == Status.COMPLETE).mean() > 0.8
    )
    an = open_dataset(store, ANALYSIS)
    assert an.sizes["time"] == 24 + 24 + 1  # every valid time of both runs, hourly
    assert (open_dataset(store, METEO)["ingest_status"].values == Status.COMPLETE).all()
    attrs = open_store(store).attrs.asdict()
    floor = attrs["synthetic"]["floor"]["o3"]
    # the analyses over every hour; the forecast floor at the 00 UTC leads (FLOOR_EVERY_H)
    assert 0 < floor["validated_rmse"] < floor["analysis_rmse"] and floor["interim_rmse"] > 0
    assert 0 < floor["weather_error_rmse"] < floor["median_rmse"]
    norm = fc.attrs["normalisation"]["no2"]
    assert norm["n"] == int(np.isfinite(fc["no2"].values).sum()) and norm["min"] >= 0


def test_s3_store_over_http_is_valid(s3_bucket, ray_cluster):
    store = f"{s3_bucket}/synthetic.zarr"
    assert main(["--no-progress", "synthetic", "--store", store, "--domain", "tiny", "--leads", "0:24:12",
                 "--days", "1", "--species", "o3,pm10"]) == 0  # fmt: skip
    assert validate_store(store, deep=True) == []
    fc = open_dataset(store, FORECASTS)
    assert np.isfinite(fc["o3"].values).any() and np.isnan(fc["no2"].values).all()


def test_rerun_changes_no_byte(tmp_path, ray_cluster):
    store = tmp_path / "s.zarr"
    ingest_synthetic(request(str(store)))
    before = tree_digest(store)
    report = ingest_synthetic(request(str(store)))
    assert report.done == 0  # nothing left to do
    assert tree_digest(store) == before


def test_extending_a_store_adds_runs_without_duplicates(tmp_path, ray_cluster):
    store = str(tmp_path / "s.zarr")
    ingest_synthetic(request(store, days=1, species=("o3",)))
    ingest_synthetic(request(store, days=2, species=("o3",)))
    fc = open_dataset(store, FORECASTS)
    assert [str(r)[:10] for r in fc["run"].values] == ["2025-07-01", "2025-07-02"]
    assert (
        len(np.unique(open_dataset(store, ANALYSIS)["time"].values))
        == open_dataset(store, ANALYSIS).sizes["time"]
    )
    assert validate_store(store, deep=True) == []


def test_another_seed_into_the_same_store_is_refused(tmp_path, ray_cluster, capsys):
    store = str(tmp_path / "s.zarr")
    ingest_synthetic(request(store, days=1, species=("o3",)))
    code = main(["synthetic", "--store", store, "--domain", "tiny", "--leads", "0,6,12,24", "--seed", "4"])
    assert code == 2 and "other parameters" in capsys.readouterr().err
    assert read_lock(store) is None  # the refused ingest gave the store's lock back


def _committed(store: Path) -> int:
    try:
        return int((zarr.open_group(str(store), mode="r")[f"{FORECASTS}/ingest_status"][:] != 0).sum())
    except Exception:  # not created yet
        return 0


@pytest.mark.slow
def test_kill_9_then_rerun_equals_a_clean_ingest(tmp_path, ray_cluster):
    cmd = [sys.executable, "-m", "dlens.ingest.cli", "--no-progress", "synthetic", "--domain", "demo",
           "--leads", "0:48:6", "--days", "3", "--seed", "5", "--store"]  # fmt: skip
    clean, crashed = tmp_path / "clean.zarr", tmp_path / "crashed.zarr"
    subprocess.run([*cmd, str(clean)], check=True, capture_output=True)

    proc = subprocess.Popen([*cmd, str(crashed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _committed(crashed) == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = _committed(crashed)
    total = _committed(clean)
    assert 0 < partial < total, (partial, total)  # killed mid-ingest, with work committed and work left

    # what is marked complete after the crash is really there
    assert validate_store(str(crashed), deep=True) == []
    subprocess.run([*cmd, str(crashed)], check=True, capture_output=True)
    assert chunk_digest(crashed) == chunk_digest(clean)
    assert open_store(str(crashed)).attrs.asdict() == open_store(str(clean)).attrs.asdict()
