"""The S3 endpoint goes down during an ingest: the command exits non-zero soon with one line naming the
endpoint, nothing is marked complete that is not, and the same command re-run completes the store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from urllib.parse import urlparse

import numpy as np
import pytest

from dlens.common.layout import FORECASTS, Status
from dlens.common.lock import read_lock
from dlens.common.schema import validate_store
from dlens.common.store import open_dataset
from dlens.testing.forwarder import Forwarder

#: Two runs of one species at one lead on the tiny domain: two forecast commits, one before the outage.
SMALL = ["--domain", "tiny", "--leads", "0", "--days", "2", "--species", "o3", "--seed", "3"]


def o3_status(store: str) -> np.ndarray:
    """The forecasts' status of o3, the species ingested: (run, member)."""
    return open_dataset(store, FORECASTS)["ingest_status"].sel(species="o3").values


def through(s3: Forwarder) -> dict[str, str]:
    """The environment of a `dlens-ingest` that reaches S3 through `s3`, its Ray tasks too: they run in the
    session's Ray, whose workers were started with the session's endpoint, so the command's Ray job carries
    it (the variable by which `ray job submit` hands a driver its job's runtime environment)."""
    endpoint = {"DLENS_S3_ENDPOINT_URL": s3.endpoint}
    job = {"runtime_env": {"env_vars": endpoint}}
    return os.environ | endpoint | {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps(job)}


@pytest.mark.slow
def test_an_ingest_cut_off_from_its_store_fails_soon_and_a_rerun_completes_it(
    s3_endpoint, s3_bucket, ray_cluster
):
    cli = shutil.which("dlens-ingest")
    assert cli, "dlens-ingest is not installed in this environment"
    store = f"{s3_bucket}/s.zarr"
    command = [cli, "--no-progress", "synthetic", "--store", store, *SMALL]
    moto = urlparse(s3_endpoint)
    s3 = Forwarder((moto.hostname, moto.port))
    s3.start()
    try:
        # S3 goes down as the second write of the forecasts' status reaches it: one run is committed
        s3.stop_on(f"PUT /{store.removeprefix('s3://')}/{FORECASTS}/ingest_status/c/".encode(), 2)
        proc = subprocess.Popen(
            command, env=through(s3), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        assert s3.tripped.wait(timeout=300), "the ingest never wrote its second status chunk"
        cut = time.monotonic()
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2 and time.monotonic() - cut < 30, err  # about 5 s; 27 s unbounded
        lines = [line for line in err.splitlines() if line.startswith("dlens-ingest:")]
        assert len(lines) == 1 and "Traceback" not in err and "Unhandled error" not in err, err
        assert lines[0].startswith(f"dlens-ingest: store unreachable: {s3.endpoint}: "), err

        # read straight from moto: what the failed run left
        status = o3_status(store)
        assert (status == Status.COMPLETE).any() and (status == Status.PENDING).any()  # cut mid-way
        assert validate_store(store, deep=True) == []  # what is marked complete is there
        assert read_lock(store).pid == proc.pid  # its lock, left behind; its process has ended

        s3.start()  # back on the same port, moto's state kept
        rerun = subprocess.run(command, env=through(s3), capture_output=True, text=True, timeout=300)
    finally:
        s3.stop()
    assert rerun.returncode == 0, rerun.stderr
    assert np.isin(o3_status(store), [Status.COMPLETE, Status.ABSENT]).all()
    assert validate_store(store, deep=True) == [] and read_lock(store) is None
