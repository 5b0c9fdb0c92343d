"""One writer at a time: `dlens-ingest` commands that write a store hold its lock (`dlens.common.lock`)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import timedelta

import pytest

from dlens.common.lock import acquire, read_lock
from dlens.common.schema import validate_store
from dlens.ingest.cli import main

#: The cheapest synthetic ingest: one run of one species at one lead on the tiny domain.
SMALL = ["--domain", "tiny", "--leads", "0", "--days", "1", "--species", "o3", "--seed", "3"]


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> str:
    if request.param == "s3":
        return f"{request.getfixturevalue('s3_bucket')}/s.zarr"
    return str(tmp_path / "s.zarr")


def test_of_two_concurrent_ingests_one_writes_and_the_other_names_it(store, ray_cluster):
    cli = shutil.which("dlens-ingest")
    assert cli, "dlens-ingest is not installed in this environment"
    command = [cli, "--no-progress", "synthetic", "--store", store, *SMALL]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    procs = [subprocess.Popen(command, **pipes), subprocess.Popen(command, **pipes)]  # started together
    done = [(p, *p.communicate(timeout=300)) for p in procs]
    winners = [(p, out) for p, out, _ in done if p.returncode == 0]
    losers = [(p, err) for p, _, err in done if p.returncode != 0]
    assert len(winners) == 1 and len(losers) == 1, [(p.returncode, err) for p, _, err in done]
    (winner, out), (loser, err) = winners[0], losers[0]
    assert loser.returncode == 2 and "units written" in out
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"dlens-ingest: store {store} is locked by another writer: ")
    assert f"pid {winner.pid} (dlens-ingest --no-progress synthetic --store {store}" in line
    assert "expires" in line
    assert read_lock(store) is None  # given back
    assert validate_store(store, deep=True) == []


def test_a_held_lock_refuses_a_writer_before_it_writes(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    held = acquire(store, "dlens-ingest files a.nc")
    assert main(["synthetic", "--store", store, *SMALL]) == 2
    assert f"pid {held.pid} (dlens-ingest files a.nc)" in capsys.readouterr().err
    assert read_lock(store) == held and validate_store(store) != []  # no store was made beside the lock


def test_an_expired_lock_is_taken_over_and_given_back_after_an_error(tmp_path, capsys):
    out = str(tmp_path / "subset.zarr")
    acquire(out, "dlens-ingest export (killed)", expiry=timedelta(0))
    missing = str(tmp_path / "none.zarr")
    code = main(["export", "--store", missing, "--out", out, "--start", "2025-07-01", "--days", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "no DL-ENS store" in err and "locked" not in err  # it got past the expired lock
    assert read_lock(out) is None  # and gave its own back when the command failed


def test_unlock_removes_a_stale_lock(tmp_path, capsys):
    store = str(tmp_path / "s.zarr")
    acquire(store, "dlens-ingest files a.nc")
    assert main(["unlock", "--store", store]) == 0
    assert "removed the lock of" in capsys.readouterr().out and read_lock(store) is None
