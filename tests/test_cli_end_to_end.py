"""The `dlens-ingest` console script as a user drives it: ingest, status, validate, fetch --dry-run."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store

CLI = shutil.which("dlens-ingest")


def run(*args: str) -> subprocess.CompletedProcess:
    assert CLI, "dlens-ingest is not installed in this environment"
    return subprocess.run([CLI, *args], capture_output=True, text=True, timeout=600)


def test_synthetic_status_validate(tmp_path, ray_cluster):
    store = str(tmp_path / "demo.zarr")
    done = run("--no-progress", "synthetic", "--store", store, "--start", "2025-01-15", "--days", "2",
               "--domain", "tiny", "--leads", "0:24:6", "--seed", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "units written" in done.stdout

    status = run("status", "--store", store)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    runs = [line for line in lines if line.startswith("2025-01-1")]
    assert [r[:10] for r in runs] == ["2025-01-15", "2025-01-16"]
    assert all(r.split()[1].count("#") + r.split()[1].count("-") == 11 for r in runs)
    assert any("analysis coverage" in line for line in lines)

    valid = run("validate", "--store", store, "--deep")
    assert valid.returncode == 0 and "valid" in valid.stdout
    assert validate_store(store) == []

    png = tmp_path / "map.png"
    plot = run(
        "plot", "--store", store, "--species", "no2", "--run", "2025-01-16", "--lead", "6", "--out", str(png)
    )
    assert plot.returncode == 0, plot.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    missing = run("plot", "--store", store, "--run", "2025-02-01", "--out", str(tmp_path / "none.png"))
    assert missing.returncode == 2 and "run 2025-02-01T00 of o3 is not complete" in missing.stderr


def test_fetch_dry_run_prints_the_ads_requests(tmp_path):
    done = run("fetch", "--store", str(tmp_path / "s.zarr"), "--start", "2025-03-01", "--days", "2",
               "--species", "o3,pm10", "--domain", "demo", "--leads", "0:96:3", "--dry-run")  # fmt: skip
    assert done.returncode == 0, done.stderr
    requests = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["target"] for r in requests] == ["forecast_2025-03-01.zip", "analysis_2025-03-01.zip",
                                                "forecast_2025-03-02.zip", "analysis_2025-03-02.zip"]  # fmt: skip
    forecast, analysis = requests[0]["request"], requests[1]["request"]
    assert requests[0]["dataset"] == "cams-europe-air-quality-forecasts"
    assert forecast["variable"] == ["ozone", "particulate_matter_10um"]
    assert (
        forecast["model"][:2] == ["chimere", "dehm"]
        and forecast["model"][-1] == "ensemble"
        and len(forecast["model"]) == 12
    )
    assert forecast["leadtime_hour"][:3] == ["0", "3", "6"] and len(forecast["leadtime_hour"]) == 33
    assert forecast["area"] == [48.35, 5.05, 42.05, 14.55] and forecast["type"] == ["forecast"]
    assert (
        analysis["type"] == ["analysis"] and analysis["model"] == ["ensemble"] and len(analysis["time"]) == 24
    )
    assert not (tmp_path / "s.zarr").exists()  # a dry run writes nothing


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synthetic", "--domain", "atlantis"], "domain 'atlantis'"),
        (["synthetic", "--leads", "0:120:3"], "hours must lie in 0..96"),
        (["synthetic", "--species", "o3,co"], "unknown species"),
        (["synthetic", "--start", "2025-13-01"], "expected YYYY-MM-DD"),
        (["status"], "no DL-ENS store at"),
    ],
)
def test_bad_command_lines_exit_2_with_a_message(tmp_path, args, message):
    done = run(*args[:1], "--store", str(tmp_path / "none.zarr"), *args[1:])
    assert done.returncode == 2
    assert not (tmp_path / "none.zarr").exists()  # nothing is created by a refused command
    assert message in done.stderr and "Traceback" not in done.stderr


def test_fetch_without_an_ads_key_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("CDSAPI_URL", "CDSAPI_KEY", "CDSAPI_RC"):
        monkeypatch.delenv(name, raising=False)
    done = run(
        "fetch",
        "--store",
        str(tmp_path / "s.zarr"),
        "--start",
        "2025-03-01",
        "--download-dir",
        str(tmp_path / "ads"),
    )
    assert done.returncode == 2 and "no ADS key" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "s.zarr").exists()


def test_synthetic_ingest_then_evaluate_ranks_the_median_above_the_members(tmp_path, synthetic_store):
    """The two services chained as `make demo` does, through their console scripts, on the generator: the
    session's store was ingested by `dlens-ingest synthetic`; evaluate writes to a copy of it."""
    store, out = str(tmp_path / "store.zarr"), tmp_path / "report"
    shutil.copytree(synthetic_store, store)
    evaluate = shutil.which("dlens-evaluate")
    assert evaluate, "dlens-evaluate is not installed in this environment"
    scored = subprocess.run(
        [evaluate, "--no-progress", "--store", store, "--start", "2025-07-06", "--days", "3",
         "--products", "median,weighted,members", "--resamples", "200", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert (out / "index.html").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    rows = [
        r for r in metrics["continuous"]
        if r["lead_block"] == "all" and r["region"] == "domain" and r["season"] == "all"
    ]  # fmt: skip
    rmse = {(r["product"], r["species"]): r["rmse"] for r in rows}
    for species in metrics["meta"]["species"]:
        beaten = [m for m in metrics["meta"]["members"] if rmse[(m, species)] > rmse[("median", species)]]
        assert len(beaten) >= 8, (species, beaten, rmse)  # most members: the band of bench/synthetic.py, 8–11
    assert validate_store(store, deep=True) == []

    # At the stations: the median's NO2 RMSE over the stations not withheld and over the withheld ones equals
    # a brute-force recomputation (scipy's linear interpolation, clamped at the domain's edge cells).
    at_stations = {(r["product"], r["species"], r["stations"]): r for r in metrics["stations"]
                   if r["lead_block"] == "all"}  # fmt: skip
    assert {name for (_, _, name) in at_stations} == {
        "all",
        "background",
        "traffic",
        "industrial",
        "withheld",
        "withheld-background",
    }
    for name, expected in brute_force_station_rmse(store, "median", "no2", "2025-07-06", 3).items():
        row = at_stations[("median", "no2", name)]
        assert row["n"] == expected[1] > 100 and row["rmse"] == pytest.approx(expected[0], rel=1e-5), name
    # The bootstrap at the stations sums the same pairs run by run: its point RMSEs are those of the table;
    # 3 runs are within one moving block of 4, so it claims nothing (no interval, no p-value).
    boot = {(r["product"], r["reference"], r["stations"]): r for r in metrics["station_significance"]
            if r["species"] == "no2" and r["lead_block"] == "all"}  # fmt: skip
    for name in ("all", "withheld"):
        row = boot[("weighted", "median", name)]
        assert row["rmse_reference"] == pytest.approx(at_stations[("median", "no2", name)]["rmse"], rel=1e-9)
        assert row["rmse"] == pytest.approx(at_stations[("weighted", "no2", name)]["rmse"], rel=1e-9)
        assert row["ci_low"] is None and row["p_value"] is None and row["verdict"] == "not significant"


def brute_force_station_rmse(store: str, product: str, species: str, start: str, days: int) -> dict:
    """{"all" | "withheld": (RMSE, n)} of a product at the stations inside the store's domain, every lead of
    every run whose valid time has both a committed analysis and committed observations."""
    reader = StoreReader(store)
    group = reader.root["observations"]
    lat, lon = group["station_latitude"][:], group["station_longitude"][:]
    withheld = group["withheld"][:]
    grid_lat, grid_lon = reader.spec.domain.latitude, reader.spec.domain.longitude
    half = 0.05 + 1e-9
    inside = (lat >= grid_lat[0] - half) & (lat <= grid_lat[-1] + half)
    inside &= (lon >= grid_lon[0] - half) & (lon <= grid_lon[-1] + half)
    points = np.stack(
        [np.clip(lat, grid_lat[0], grid_lat[-1]), np.clip(lon, grid_lon[0], grid_lon[-1])], axis=1
    )
    errors = {"all": [], "withheld": []}
    for day in range(days):
        run = np.datetime64(start, "h") + np.timedelta64(24 * day, "h")
        for lead in reader.spec.leads:
            valid = run + np.timedelta64(lead, "h")
            observed = reader.observations(species, valid)
            if observed is None or not reader.analysis_complete(species, valid):
                continue
            field = reader.product(product, species, run, lead)[0]
            sampled = RegularGridInterpolator((grid_lat, grid_lon), field.astype(np.float64))(points)
            err = sampled - observed
            ok = np.isfinite(err) & inside
            errors["all"].append(err[ok & ~withheld])
            errors["withheld"].append(err[ok & withheld])
    out = {}
    for name, parts in errors.items():
        e = np.concatenate(parts)
        out[name] = (float(np.sqrt(np.mean(e**2))), e.size)
    return out
