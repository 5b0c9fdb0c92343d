"""Request bodies besides JSON: NetCDF read in whichever orientation CAMS files come, refused with a
message when it cannot be used, in a worker process whose memory limit holds, and refused when it reaches
outside itself; request checks of member fields; batch-invariant CPU inference."""

from __future__ import annotations

import io
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import torch
import xarray as xr

from dlens.common.grid import parse_domain
from dlens.common.species import MEMBERS
from dlens.model.features import channel_names
from dlens.model.inference import ensemble
from dlens.model.registry import ModelEntry
from dlens.serve.bodies import read_netcdf_in
from dlens.serve.codec import write_netcdf
from dlens.serve.netcdf_body import prepare, read_netcdf
from dlens.serve.problems import RequestProblem
from dlens.serve.samples import make_sample
from dlens.serve.workers import WorkerDied, WorkerPool

TINY = parse_domain("tiny")


def netcdf(ds: xr.Dataset, engine: str = "scipy", tmp_path=None) -> bytes:
    """NetCDF-3 bytes (scipy), or NetCDF-4 (netcdf4, through a file: it writes no bytes in memory)."""
    if engine == "scipy":
        return bytes(ds.to_netcdf(engine="scipy"))
    path = tmp_path / "members.nc"
    ds.to_netcdf(path, engine="netcdf4")
    return path.read_bytes()


def members_dataset(name: str = "o3", rng=None, members=("chimere", "emep")) -> xr.Dataset:
    rng = rng or np.random.default_rng(0)
    data = rng.gamma(4.0, 10.0, size=(len(members), *TINY.shape)).astype(np.float32)
    return xr.Dataset(
        {name: (("member", "latitude", "longitude"), data)},
        coords={"member": list(members), "latitude": TINY.latitude, "longitude": TINY.longitude},
    )


@pytest.mark.parametrize("engine", ["scipy", "netcdf4"])
def test_netcdf_in_any_orientation_reads_the_same_fields(engine, tmp_path):
    ds = members_dataset("o3_conc")
    flipped = ds.isel(latitude=slice(None, None, -1)).assign_coords(longitude=ds.longitude % 360)
    with_level = ds.expand_dims(level=[0], axis=1)
    for variant in (ds, flipped, with_level):
        fields, domain = read_netcdf(netcdf(variant, engine, tmp_path))
        assert domain.spec() == TINY.spec() and set(fields) == {"o3"}
        np.testing.assert_array_equal(fields["o3"]["emep"], ds["o3_conc"].sel(member="emep").values)


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        (b"\x89HDF\r\n\x1a\n broken", 400, "malformed"),
        (b"plain text", 400, "not NetCDF"),
        (netcdf(members_dataset("temperature")), 422, "no species variable"),
        (netcdf(members_dataset(members=("chimere", "cmaq"))), 422, "unknown member"),
        (netcdf(members_dataset().isel(longitude=[0, 2, 5])), 422, "contiguous"),
        (netcdf(members_dataset().rename({"member": "model"})), 422, "dims"),
    ],
)
def test_unusable_netcdf_is_refused_with_a_message(body, status, word):
    with pytest.raises(RequestProblem) as problem:
        read_netcdf(body)
    assert problem.value.status == status and word in problem.value.detail


def _bomb() -> bytes:
    """A 64 KB NetCDF-4 body whose dimensions all pass check_sizes, but whose o3 has two more (700 × 30):
    123 MiB of fill values, none of its chunks written."""
    nc = netCDF4.Dataset("bomb", "w", memory=4096, format="NETCDF4")
    dims = {"member": 2, "latitude": TINY.shape[0], "longitude": TINY.shape[1], "a": 700, "b": 30}
    for name, size in dims.items():
        nc.createDimension(name, size)
    nc.createVariable("member", str, ("member",))[:] = np.array(["chimere", "emep"], dtype=object)
    for name in ("latitude", "longitude"):
        nc.createVariable(name, "f8", (name,))[:] = getattr(TINY, name)
    nc.createVariable("o3", "f4", tuple(dims), chunksizes=(1, *TINY.shape, 700, 1))
    return bytes(nc.close())


def _rss_kib(field: str) -> int:
    status = Path("/proc/self/status").read_text()
    return int(status.split(f"{field}:")[1].split()[0])


def test_a_netcdf_bomb_is_refused_in_its_worker_and_this_process_does_not_grow():
    """A worker limited to 64 MiB refuses it (413 naming the limit); this process's peak RSS stays where it
    was (the body read here would take 123 MiB); the worker then reads a good body."""
    workers = WorkerPool(1, 64 * 1024**2, setup=prepare)
    try:
        Path("/proc/self/clear_refs").write_text("5")  # the peak RSS (VmHWM) starts again from the RSS
        before = _rss_kib("VmRSS")
        with pytest.raises(RequestProblem) as problem:
            read_netcdf_in(workers, _bomb())
        assert problem.value.status == 413 and "64 MiB (max_netcdf_memory_mb)" in problem.value.detail
        assert _rss_kib("VmHWM") - before < 32 * 1024
        fields, domain = read_netcdf_in(workers, netcdf(members_dataset()))
        assert domain.spec() == TINY.spec() and set(fields["o3"]) == {"chimere", "emep"}
    finally:
        workers.close()


def _zombie(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_the_workers_survive_a_killed_worker():
    """A worker killed during a call (as the OOM killer would) fails that call only; one killed between
    calls fails none: a new worker takes the next, and reads a good body. (No setup: the worker starts in a
    blink, and imports the reader with the body, within a limit that allows it.)"""
    pool = WorkerPool(1, 4 * 1024**3, setup=int)
    try:
        pid = pool.call(os.getpid)
        with pytest.raises(WorkerDied, match="SIGKILL"):
            pool.call(os.kill, pid, signal.SIGKILL)
        idle = pool.call(os.getpid)
        os.kill(idle, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _zombie(idle) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool.call(os.getpid) not in (pid, idle)
        assert set(read_netcdf_in(pool, netcdf(members_dataset()))[0]) == {"o3"}
    finally:
        pool.close()


@pytest.mark.parametrize(
    ("reach", "word"),
    [("external link", "ExternalLink"), ("external storage", "external files"), ("virtual", "virtual")],
)
def test_a_netcdf4_body_reaching_outside_itself_is_refused(reach, word, tmp_path):
    """o3 as an external link, stored in an external (raw) file or as a virtual dataset of another file:
    netCDF-C would read that file of the server's. 422 before it opens the body."""
    outside = tmp_path / "outside.nc"
    members_dataset().to_netcdf(outside, engine="netcdf4")
    raw = tmp_path / "outside.raw"
    members_dataset()["o3"].values.tofile(raw)
    path = tmp_path / "body.nc"
    members_dataset().drop_vars("o3").to_netcdf(path, engine="netcdf4")
    with h5py.File(path, "a") as file:
        if reach == "external link":
            file["o3"] = h5py.ExternalLink(str(outside), "/o3")
        elif reach == "external storage":
            file.create_dataset("o3", (2, *TINY.shape), "f4", external=[(str(raw), 0, h5py.h5f.UNLIMITED)])
        else:
            layout = h5py.VirtualLayout((2, *TINY.shape), "f4")
            layout[:] = h5py.VirtualSource(str(outside), "o3", (2, *TINY.shape))
            file.create_virtual_dataset("o3", layout)
        if reach != "external link":
            for axis, name in enumerate(("member", "latitude", "longitude")):
                file["o3"].dims[axis].attach_scale(file[name])
    with pytest.raises(RequestProblem) as problem:
        read_netcdf(path.read_bytes())
    assert problem.value.status == 422 and word in problem.value.detail and "o3" in problem.value.detail


def test_netcdf_answer_round_trips():
    field = np.arange(np.prod(TINY.shape), dtype=np.float32).reshape(TINY.shape)
    out = xr.open_dataset(io.BytesIO(write_netcdf({"o3": field}, TINY, {"model": "m"})), engine="scipy")
    np.testing.assert_array_equal(out["o3"].values, field)
    assert out.attrs["model"] == "m" and out["o3"].attrs["units"] == "µg/m3"


def entry(architecture: str = "HalfUNet") -> ModelEntry:
    """A registry entry for o3 and no2 on the tiny domain, no static channels."""
    species = ("o3", "no2")
    model = {"architecture": architecture, "settings": {"num_filters": 4}, "head": "mixture"}
    return ModelEntry("m", {
        "config": {"data": {"species": list(species)}, "model": model},
        "normaliser": {"log1p_mean": {"o3": 3.5, "no2": 2.0}, "log1p_std": {"o3": 0.5, "no2": 0.8}},
        "input_channels": channel_names(species, ()), "input_shape": list(TINY.shape),
    })  # fmt: skip


def test_member_fields_are_checked_with_a_message():
    good = np.ones(TINY.shape)
    run = datetime(2025, 7, 1)
    cases = [
        ({"o3": {"chimere": np.ones((2, 2))}}, "2×2"),
        ({"o3": {"chimere": np.full(TINY.shape, np.inf)}}, "non-finite"),
        ({"o3": {"chimere": good * 1e9}}, "1e6"),
        ({"no2": {"chimere": good}}, "no member of o3"),
        ({"o3": {"chimere": good}, "pm10": {"emep": good}}, "does not read pm10"),
    ]
    for fields, word in cases:
        with pytest.raises(RequestProblem) as problem:
            make_sample(entry(), "o3", run, 3, TINY, TINY, fields)
        assert problem.value.status == 422 and word in problem.value.detail, word
    with pytest.raises(RequestProblem, match="not inside"):
        make_sample(
            entry(),
            "o3",
            run,
            3,
            parse_domain("demo"),
            TINY,
            {"o3": {"chimere": np.ones(parse_domain("demo").shape)}},
        )
    with pytest.raises(RequestProblem, match="predicts o3, no2, not so2"):
        make_sample(entry(), "so2", run, 3, TINY, TINY, {"so2": {"chimere": good}})
    sample = make_sample(
        entry(), "o3", run, 3, TINY, TINY, {"o3": {"emep": good, "chimere": None}, "no2": {"dehm": good}}
    )
    assert sample.members_used(0) == ["emep"] and sample.members_used(1) == ["dehm"]
    assert np.isfinite(sample.members()).sum() == 2 * good.size


def test_cpu_inference_does_not_depend_on_the_batch():
    """A field is the same whichever requests shared its batch (oneDNN off on the CPU)."""
    torch.manual_seed(0)
    e = entry()
    model = e.build().eval()
    rng = np.random.default_rng(1)
    members = rng.gamma(4.0, 10.0, size=(5, 2, len(MEMBERS), *TINY.shape)).astype(np.float32)
    members[:, :, 3] = np.nan
    leads, times = (
        [0, 3, 6, 9, 12],
        [np.datetime64("2025-07-01T00") + np.timedelta64(h, "h") for h in (0, 3, 6, 9, 12)],
    )
    static = np.zeros((0, *TINY.shape), dtype=np.float32)
    together = ensemble(model, e, members, static, leads, times)
    alone = np.concatenate(
        [ensemble(model, e, members[i : i + 1], static, leads[i : i + 1], times[i : i + 1]) for i in range(5)]
    )
    np.testing.assert_array_equal(together, alone)
