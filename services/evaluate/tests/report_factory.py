"""Realistic fake inputs of `write_report`: a metrics dict and a Dataset of maps (tests only).

Scores follow plausible magnitudes (o3 RMSE ~17 µg/m³ growing with lead, no2 ~9), a DL-ENS product
beats the median, members are worse, and a few values are NaN as the pipeline may leave them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from dlens.common.species import LEAD_BLOCKS, MEMBERS, SPECIES, lead_block

BASELINES = ("median", "mean", "weighted")
DLENS = "dlens-abc123"
FAKE_MEMBERS = ("chimere", "emep", "mocage", "silam")
LEADS = (0, 6, 12, 24, 36, 48, 72, 96)
REGIONS = {
    "domain": {"description": "whole domain", "cells": 64 * 96},
    "AL": {"description": "Alps 44–48N 5–15E (PRUDENCE)", "cells": 40 * 96},
}
SEASONS = ("JJA",)
#: RMSE factor of each product relative to the median.
SKILL = {"median": 1.0, "mean": 1.02, "weighted": 0.97, DLENS: 0.9}
SKILL |= {m: 1.08 + 0.03 * k for k, m in enumerate(MEMBERS)}
BASE_RMSE = {"o3": 17.0, "no2": 9.0, "so2": 3.0, "pm10": 8.0}
BASE_MEAN = {"o3": 85.0, "no2": 14.0, "so2": 2.5, "pm10": 18.0}
#: Station sets and their station counts; RMSE at stations is larger than against the analysis.
STATION_COUNTS = {"all": 160, "background": 100, "traffic": 45, "industrial": 15, "withheld": 28,
                  "withheld-background": 17}  # fmt: skip
STATION_SETS = {name: f"{name} stations" for name in STATION_COUNTS}
N_STATIONS = STATION_COUNTS["all"] + STATION_COUNTS["withheld"]


def _scores(rng: np.random.Generator, product: str, species: str, lead: float, scale: float = 1.0) -> dict:
    skill = SKILL.get(product, 1.2)
    rmse = BASE_RMSE[species] * skill * (1 + lead / 200) * scale * rng.uniform(0.97, 1.03)
    bias = BASE_RMSE[species] * (0.25 * (skill - 1) * 4 - 0.05) * rng.uniform(0.8, 1.2)
    mean = BASE_MEAN[species]
    return {
        "rmse": rmse,
        "mae": 0.78 * rmse,
        "bias": bias,
        "r": float(np.clip(0.92 - 0.25 * (skill - 0.9) - lead / 800, 0, 1)),
        "mnmb": bias / mean,
        "fge": 0.9 * rmse / mean,
        "variance_ratio": float(np.clip(1.1 - 0.3 * skill + lead / 1000, 0.3, 1.2)),
        "rmse_top5": 1.6 * rmse,
        "bias_top5": -0.5 * rmse,
        "skill_persistence": 1 - (skill / 1.6) ** 2,
    }


def make_metrics(
    products: tuple[str, ...] | None = None,
    species: tuple[str, ...] = ("o3", "no2"),
    seed: int = 0,
) -> dict[str, Any]:
    """A metrics dict shaped like the pipeline's (see dlens.evaluate.report)."""
    rng = np.random.default_rng(seed)
    products = products or (*BASELINES, DLENS, *FAKE_MEMBERS)
    members = [p for p in products if p in MEMBERS]
    blocks = list(LEAD_BLOCKS)
    runs = [f"2025-07-{d:02d}" for d in range(1, 15)]
    n_runs = len(runs)
    continuous: list[dict] = []
    exceedance: list[dict] = []
    mda8: list[dict] = []
    stations: list[dict] = []
    significance: list[dict] = []
    for s in species:
        for p in products:
            base = {"product": p, "species": s, "level": 0}
            for lead in LEADS:
                row = {
                    **base,
                    "lead": lead,
                    "lead_block": lead_block(lead),
                    "region": "domain",
                    "season": "all",
                }
                continuous.append({**row, "n": n_runs * 64 * 96, **_scores(rng, p, s, lead)})
            for block in [*blocks, "all"]:
                mid = 48.0 if block == "all" else float(np.mean(LEAD_BLOCKS[block]))
                for region, info in REGIONS.items():
                    scale = 1.0 if region == "domain" else 1.15
                    row = {**base, "lead": None, "lead_block": block, "region": region, "season": "all"}
                    n = n_runs * info["cells"] * (len(LEADS) if block == "all" else 2)
                    continuous.append({**row, "n": n, **_scores(rng, p, s, mid, scale)})
            for season in SEASONS:
                row = {**base, "lead": None, "lead_block": "all", "region": "domain", "season": season}
                continuous.append({**row, "n": n_runs * 64 * 96 * len(LEADS), **_scores(rng, p, s, 48.0)})
            info = SPECIES[s]
            thresholds = [(info.threshold_kind, info.threshold_ugm3)]
            if info.alert_ugm3:
                thresholds.append(("alert", info.alert_ugm3))
            for name, value in thresholds:
                for block in [*blocks, "all"]:
                    observed = 0 if name == "alert" else int(rng.integers(40, 400))
                    hits = int(observed * rng.uniform(0.3, 0.8) / SKILL.get(p, 1.2))
                    hits = min(hits, observed)
                    misses = observed - hits
                    false_alarms = int(rng.integers(5, 150))
                    total = n_runs * 64 * 96 * 2
                    pod = hits / observed if observed else float("nan")
                    far = false_alarms / (hits + false_alarms) if hits + false_alarms else float("nan")
                    csi = (
                        hits / (hits + misses + false_alarms)
                        if hits + misses + false_alarms
                        else float("nan")
                    )
                    exceedance.append(
                        {
                            **base,
                            "lead_block": block,
                            "threshold_name": name,
                            "threshold": value,
                            "averaging": info.threshold_averaging,
                            "hits": hits,
                            "misses": misses,
                            "false_alarms": false_alarms,
                            "correct_negatives": total - hits - misses - false_alarms,
                            "pod": pod,
                            "far": far,
                            "csi": csi,
                            "sedi": float(np.clip(0.9 - 0.3 * SKILL.get(p, 1.2), -1, 1))
                            if observed
                            else None,
                            "fss": float(np.clip(1.0 - 0.4 * SKILL.get(p, 1.2), 0, 1)) if observed else None,
                            "fss_window": 5,
                        }
                    )
            if s == "o3":
                for block in [*blocks, "all"]:
                    row = {**base, "lead_block": block, "region": "domain"}
                    mda8.append({**row, "n": n_runs * 64 * 96, **_scores(rng, p, s, 48.0, 0.8)})
            for block in [*blocks, "all"]:
                for name, count in STATION_COUNTS.items():
                    factor = 1.6 if name == "traffic" else 1.3
                    stations.append({**base, "lead_block": block, "stations": name, "station_count": count,
                                     "n": n_runs * count * 8, **_scores(rng, p, s, 48.0, factor)})  # fmt: skip
    by_key = {
        (r["product"], r["species"], r["lead_block"]): r["rmse"]
        for r in continuous
        if r["lead"] is None and r["region"] == "domain" and r["season"] == "all"
    }
    for s in species:
        for p in products:
            if p == "median":
                continue
            for block in [*blocks, "all"]:
                rmse, ref = by_key[(p, s, block)], by_key[("median", s, block)]
                diff = rmse - ref
                half = abs(ref) * rng.uniform(0.015, 0.05)
                low, high = diff - half, diff + half
                verdict = "better" if high < 0 else "worse" if low > 0 else "not significant"
                significance.append(
                    {
                        "product": p,
                        "species": s,
                        "level": 0,
                        "lead_block": block,
                        "reference": "median",
                        "rmse": rmse,
                        "rmse_reference": ref,
                        "difference": diff,
                        "ci_low": low,
                        "ci_high": high,
                        "verdict": verdict,
                    }
                )
    continuous[3]["r"] = float("nan")  # the pipeline may leave NaN (e.g. a constant field)
    return {
        "meta": {
            "title": "DL-ENS verification, Alps, July 2025",
            "store": "s3://dlens-demo/alps.zarr",
            "created": "2025-08-01T06:00:00+00:00",
            "code_version": "0.1.0+g1234abc",
            "period": {"start": runs[0], "days": n_runs, "runs": runs},
            "domain": {"name": "alps", "bounds_snwe": [42.0, 48.4, 5.0, 14.6], "shape": [64, 96]},
            "products": list(products),
            "members": members,
            "reference": "median",
            "species": list(species),
            "leads": list(LEADS),
            "levels": [0],
            "lead_blocks": blocks,
            "regions": REGIONS,
            "seasons": list(SEASONS),
            "bootstrap": {"resamples": 1000, "confidence": 0.95, "unit": "run"},
            "station_sets": STATION_SETS,
            "units": "µg/m3",
        },
        "stations": stations,
        "continuous": continuous,
        "exceedance": exceedance,
        "mda8": mda8,
        "significance": significance,
    }


def make_maps(
    products: tuple[str, ...] | None = None, species: tuple[str, ...] = ("o3", "no2"), seed: int = 0
) -> xr.Dataset:
    """RMSE and bias maps on 64 × 96 cells (lat 42.05..48.35, lon 5.05..14.55), NaN in one corner."""
    rng = np.random.default_rng(seed)
    products = products or (*BASELINES, DLENS, *FAKE_MEMBERS)
    lat = np.round(42.05 + 0.1 * np.arange(64), 2)
    lon = np.round(5.05 + 0.1 * np.arange(96), 2)
    lat2, lon2 = np.meshgrid(lat, lon, indexing="ij")
    po_valley = np.exp(-(((lat2 - 45.2) / 0.6) ** 2) - ((lon2 - 10.0) / 2.0) ** 2)
    alps = np.exp(-(((lat2 - 46.5) / 0.7) ** 2))
    rmse = np.empty((len(products), len(species), 64, 96), dtype=np.float32)
    bias = np.empty_like(rmse)
    for i, p in enumerate(products):
        for j, s in enumerate(species):
            pattern = 1 + 0.8 * po_valley + 0.4 * alps
            noise = rng.normal(0, 0.02, size=pattern.shape)
            wave = np.sin(0.8 * lon2 + 1.3 * i) * np.cos(1.1 * lat2 - i)
            local = SKILL.get(p, 1.2) * (1 + 0.08 * wave * (p != "median"))
            rmse[i, j] = BASE_RMSE[s] * pattern * local * (1 + noise)
            bias[i, j] = BASE_RMSE[s] * (0.3 * po_valley - 0.1) * (SKILL.get(p, 1.2) - 0.85) * 3
    rmse[..., :6, :10] = np.nan  # no data in the south-west corner (outside the domain)
    bias[..., :6, :10] = np.nan
    dims = ("product", "species", "latitude", "longitude")
    station_lat = rng.uniform(lat[0], lat[-1], N_STATIONS)
    station_lon = rng.uniform(lon[0], lon[-1], N_STATIONS)
    skill = np.array([SKILL.get(p, 1.2) for p in products])[:, None, None]
    station_rmse = (np.array([BASE_RMSE[s] for s in species])[None, :, None] * 1.3 * skill
                    * rng.uniform(0.6, 1.6, (1, 1, N_STATIONS)) * rng.uniform(0.95, 1.05, (len(products), 1, N_STATIONS)))  # fmt: skip
    station_dims = ("product", "species", "station")
    return xr.Dataset(
        {"rmse": (dims, rmse), "bias": (dims, bias),
         "station_rmse": (station_dims, station_rmse.astype(np.float32)),
         "station_bias": (station_dims, np.zeros_like(station_rmse, dtype=np.float32))},
        coords={"product": list(products), "species": list(species), "latitude": lat, "longitude": lon,
                "station_code": ("station", [f"XX{k:04d}A" for k in range(N_STATIONS)]),
                "station_latitude": ("station", station_lat), "station_longitude": ("station", station_lon),
                "withheld": ("station", np.arange(N_STATIONS) >= STATION_COUNTS["all"])},
        attrs={"reference": "median"},
    )  # fmt: skip
