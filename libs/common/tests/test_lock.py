"""The store lock (`dlens.common.lock`) on a local store and on S3 over HTTP (moto)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from dlens.common import lock, store
from dlens.common.lock import (
    LOCK_KEY,
    StoreLockedError,
    acquire,
    break_lock,
    read_lock,
    release,
    store_lock,
)
from dlens.common.store import create_file, list_directory, write_file


@pytest.fixture(params=["local", "s3"])
def url(request, tmp_path) -> str:
    if request.param == "s3":
        return f"{request.getfixturevalue('s3_bucket')}/s.zarr"
    return str(tmp_path / "s.zarr")


def test_a_second_writer_is_refused_with_the_owner_and_expiry(url):
    held = acquire(url, "dlens-ingest synthetic --days 1")
    with pytest.raises(StoreLockedError) as refused:
        acquire(url, "dlens-ingest files x.nc")
    message = str(refused.value)
    assert "\n" not in message and "locked by another writer" in message
    assert f"{socket.gethostname()} pid {os.getpid()} (dlens-ingest synthetic --days 1)" in message
    assert f"expires {held.expires:%Y-%m-%dT%H:%M:%S}Z" in message and "dlens-ingest unlock" in message
    assert read_lock(url) == held  # the refused writer left it alone
    release(url, held)
    assert read_lock(url) is None
    release(url, acquire(url, "dlens-ingest files x.nc"))
    assert list_directory(url, "") == []  # no lock, claim or temporary file left behind


def test_an_expired_lock_is_taken_over_and_its_late_owner_leaves_the_new_one(url):
    old = acquire(url, "killed", expiry=timedelta(0))
    new = acquire(url, "next")
    assert read_lock(url) == new
    release(url, old)  # the old owner, finishing late, must not remove its successor's lock
    assert read_lock(url) == new
    release(url, new)
    assert read_lock(url) is None


def test_the_lock_of_a_killed_writer_on_this_machine_is_taken_over_at_once(tmp_path):
    url = str(tmp_path / "s.zarr")
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead = replace(acquire(url, "killed"), pid=int(ended.stdout))  # a pid whose process has ended
    elsewhere = replace(dead, token="0" * 32, pid_namespace="another-machine:1")
    write_file(url, LOCK_KEY, elsewhere.to_json())  # that pid may live there: only expiry or unlock free it
    with pytest.raises(StoreLockedError):
        acquire(url, "next")
    write_file(url, LOCK_KEY, dead.to_json())
    assert read_lock(url).owner_gone and acquire(url, "next").command == "next"


def test_the_lock_is_given_back_on_error(url):
    with pytest.raises(RuntimeError, match="boom"), store_lock(url, "failing") as held:
        assert read_lock(url) == held
        raise RuntimeError("boom")
    assert read_lock(url) is None
    if "://" not in url:
        assert not Path(url).exists()  # a directory made only for the lock goes with it


def test_unlock_removes_any_lock(url):
    held = acquire(url, "killed")
    assert break_lock(url) == held and read_lock(url) is None
    write_file(url, LOCK_KEY, b"not json")
    with pytest.raises(ValueError, match="not a readable lock"):
        acquire(url, "next")
    assert break_lock(url) is None and read_lock(url) is None


def test_exclusive_create_has_one_winner(tmp_path):
    url, barrier = str(tmp_path / "s.zarr"), threading.Barrier(8)
    won: list[bool] = []

    def create(k: int) -> None:
        barrier.wait()
        won.append(create_file(url, "key", str(k).encode()))

    threads = [threading.Thread(target=create, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(won) == [False] * 7 + [True]
    assert sorted(os.listdir(url)) == ["key"]  # the losers' temporary files are gone


def test_an_expired_lock_is_removed_by_one_writer_only(tmp_path, monkeypatch):
    """Writer B has checked that the expired lock is still there and is about to delete it when writer A
    takes it over: B must not delete A's new lock, so that exactly one of them ends up holding it."""
    url = str(tmp_path / "s.zarr")
    acquire(url, "killed", expiry=timedelta(0))
    monkeypatch.setattr(lock, "_PAUSE_S", 0.0)
    a_result: list[object] = []

    def delete_file(url_: str, key: str) -> None:
        if key == LOCK_KEY and not a_result:  # A runs its whole acquire between B's check and B's delete
            try:
                a_result.append(acquire(url, "A"))
            except StoreLockedError as exc:
                a_result.append(exc)
        store.delete_file(url_, key)

    monkeypatch.setattr(lock, "delete_file", delete_file)
    b = acquire(url, "B")
    assert isinstance(a_result[0], StoreLockedError), "both writers took the lock"
    assert read_lock(url) == b
