"""Calibration of the synthetic world against real CAMS data (DESIGN §5): real, synthetic, band, PASS/MISS.

Sections, each computed here from the real files and the generator (nothing hard-coded but the bands):
  - Milan: the generator's validated reanalysis at the Milan cell over the year from --start against the
    four real CAMS reanalysis years at Milan (../shared/data/cams-samples): mean, p99, p99.9, day-to-day
    variability and persistence of the deseasonalised log daily means, diurnal phases (O3, NO2), the
    winter / summer ratio, PM10 days above 50;
  - the domain (--domain) in July of that year: O3 above 180 in land cell-hours, rural daily maxima;
    NO2 in the rural Po Valley in January; Saharan dust days in the southern Mediterranean and at Milan;
  - skill (--domain, daily runs from --start, against the analysis): the median against the best member
    and the others, error growth with lead, which member is best by place and lead, and how much a
    per-gridpoint, per-member de-biasing with inverse-variance weights fitted on 4 weeks removes from the
    median's RMSE on the 4 weeks after (CAMS-like: 5–20 %); beside each ratio, its sampling interval (the
    central 90 % over a moving-block bootstrap of the test runs; the verdict is on the ratio itself,
    and a miss says whether the interval lies wholly outside the band or reaches into it);
  - stations (the full grid, March 1–7 of the --start year): the median's day-0 forecast at the synthetic
    EEA stations against the real CAMS ENSEMBLE day-0 forecast at the EEA near-real-time stations
    (../shared/data/real-cams, 2024-03-01): RMSE and bias.
A real file that cannot be read is an error (exit 2). Exit status 1 when a row misses its band.

    uv run python bench/synthetic.py [--seed 0] [--start 2025-01-01] [--domain demo] [--json PATH] [--quick]
    uv run python bench/synthetic.py --markdown run1.json run2.json ...   # the table of docs/synthetic.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from tqdm import tqdm

from dlens.common.grid import parse_domain
from dlens.common.species import LEAD_BLOCKS, MEMBERS, lead_block
from dlens.evaluate.metrics import block_draws
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.ingest.synthetic.members import member_median
from dlens.ingest.synthetic.statistics import circular_hours, combine_years, rmse, series_statistics

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MILAN_FILES = sorted(
    (SHARED / "cams-samples" / "Assimila__HARMONIA_AQ" / "Milan").glob("cams_Eur_AQ_reanalysis_*.nc")
)
STATION_FILES = SHARED / "real-cams" / "metno__pyaerocom"
MILAN = "45.45,45.45,9.15,9.15"
SICILY = "37.45,37.45,14.95,14.95"  # the southern Mediterranean, where Saharan dust is frequent
PO_VALLEY = "44.75,45.65,8.05,12.05"
SPECIES = ("o3", "no2", "so2", "pm10")
#: Bands of the Milan statistics: ("ratio", factor), ("abs", tolerance), ("hours", tolerance), ("range", lo, hi).
MILAN_BANDS = {
    "mean": ("ratio", 1.3), "p99": ("ratio", 1.3), "p99.9": ("ratio", 1.4), "daily_variability": ("ratio", 1.4),
    "daily_persistence": ("abs", 0.15), "winter_to_summer": ("ratio", 1.5), "hour_of_max": ("hours", 2.0),
    "hour_of_min": ("hours", 2.0), "days_above_50": ("range", 10.0, 90.0),
}  # fmt: skip
PHASE_SPECIES = ("o3", "no2")  # the species whose real diurnal cycle is clear enough to have a phase
STATION_SPECIES = ("no2", "o3", "pm10")
SECTIONS = ("milan", "domain", "skill", "stations")
STATION_DAYS = 7  # early March, like the real one-day sample
#: The skill ratios' sampling interval: a moving-block bootstrap of the test runs (blocks of 4 runs: the
#: forecasts of neighbouring runs overlap in valid time), its central 90 %.
INTERVAL, RESAMPLES, BLOCK = 0.9, 1000, 4


def row(
    section: str, name: str, real: float | None, synthetic: float, band: tuple, interval: tuple | None = None
) -> dict:
    """One calibration row and its verdict (on `synthetic`; `interval`, its sampling interval, is shown).

    A missed row with an interval also says whether the interval lies wholly outside the band (`clear`: no
    luck of the draw explains the miss) or reaches into it (a miss within the draw's sampling).
    """
    kind = band[0]
    if kind == "ratio":
        ok = real > 0 and synthetic > 0 and 1 / band[1] <= synthetic / real <= band[1]
        text = f"×{band[1]}"
    elif kind == "abs":
        ok = abs(synthetic - real) <= band[1]
        text = f"±{band[1]}"
    elif kind == "hours":
        ok = circular_hours(synthetic, real) <= band[1]
        text = f"±{band[1]:.0f} h"
    elif kind == "range":
        ok = band[1] <= synthetic <= band[2]
        text = f"{band[1]:g}–{band[2]:g}"
    elif kind == "sign":  # same sign and within a factor
        ok = np.sign(synthetic) == np.sign(real) and 1 / band[1] <= synthetic / real <= band[1]
        text = f"same sign, ×{band[1]}"
    else:
        raise ValueError(kind)
    out = {"section": section, "statistic": name, "real": real, "synthetic": float(synthetic), "band": text,
           "verdict": "PASS" if ok else "MISS"}  # fmt: skip
    if interval is not None:
        out["interval"] = [float(interval[0]), float(interval[1])]
        if not ok and kind == "range":
            out["clear"] = bool(interval[1] < band[1] or interval[0] > band[2])
    return out


def miss_text(r: dict) -> str:
    """How a missed row is shown: plain, or whether its sampling interval reaches the band."""
    if "clear" not in r:
        return "MISS"
    return "MISS (interval outside the band)" if r["clear"] else "MISS (within sampling)"


# --------------------------------------------------------------------------------------- real data
def real_milan() -> dict[str, dict[str, float]]:
    """The Milan statistics of each species, the mean over the real reanalysis years that have it."""
    if len(MILAN_FILES) < 4:
        raise FileNotFoundError(
            f"expected the four Milan reanalysis years in {MILAN_FILES[0].parent if MILAN_FILES else SHARED}"
        )
    per_species: dict[str, list] = {sp: [] for sp in SPECIES}
    for path in MILAN_FILES:
        with xr.open_dataset(path) as ds:
            index = pd.DatetimeIndex(ds["time"].values)
            for sp in SPECIES:
                values = ds[sp].values.astype(float)
                if np.isfinite(values).mean() > 0.9:
                    per_species[sp].append(series_statistics(pd.Series(values, index=index).interpolate()))
    return {sp: combine_years(stats) for sp, stats in per_species.items()}


def real_stations() -> dict[str, dict]:
    """RMSE of the CAMS ENSEMBLE day-0 forecast at the EEA NRT stations it shares with the CAMS-MOS file,
    its bias and the observed mean over all its stations, and their codes, 2024-03-01 (pyaerocom's
    colocated files)."""
    out = {}
    for sp in STATION_SPECIES:
        name = f"conc{sp}_conc{sp}_MOD-{{}}_REF-EEA-NRT_20240301_20240301_hourly_ALL-wMOUNTAINS.nc"
        with (
            xr.open_dataset(STATION_FILES / name.format("ENS")) as ens,
            xr.open_dataset(STATION_FILES / name.format("MOS")) as mos,
        ):
            values = ens[f"conc{sp}"]
            obs, fc = values.isel(data_source=0).values, values.isel(data_source=1).values
            shared = np.isin(ens["station_name"].values, mos["station_name"].values)
            ok = np.isfinite(obs) & np.isfinite(fc)
            out[sp] = {
                "rmse": rmse(fc[:, shared], obs[:, shared]),
                "bias": float((fc - obs)[ok].mean()),
                "observed_mean": float(obs[ok].mean()),
                "codes": set(ens["station_name"].values.astype(str)),
            }
    return out


# --------------------------------------------------------------------------------------- synthetic
def hours(start: datetime, days: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=24 * days, freq="h")


def cell_series(seed: int, domain: str, index: pd.DatetimeIndex, species: str, kind: str) -> pd.Series:
    gen = SyntheticGenerator(parse_domain(domain), seed)
    values = [gen.analysis(species, t.to_pydatetime(), kind)[0, 0] for t in index]
    return pd.Series(np.asarray(values, float), index=index)


def milan_rows(seed: int, year: int, real: dict, quick: bool) -> list[dict]:
    index = hours(datetime(year, 1, 1), 365 if not quick else 120)
    rows = []
    for sp in tqdm(SPECIES, desc="Milan year", unit="species"):
        synthetic = series_statistics(cell_series(seed, MILAN, index, sp, "validated"))
        for stat, band in MILAN_BANDS.items():
            if stat.startswith("hour_of") and sp not in PHASE_SPECIES:
                continue
            if stat == "days_above_50" and sp != "pm10":
                continue
            rows.append(row("Milan", f"{sp} {stat}", real[sp][stat], synthetic[stat], band))
    return rows


def domain_rows(seed: int, domain: str, year: int, quick: bool) -> list[dict]:
    """O3 in July on the domain; NO2 in the rural Po Valley in January; dust days in Sicily and at Milan."""
    rows = []
    gen = SyntheticGenerator(parse_domain(domain), seed)
    static = gen.static
    land = gen.static_fields()["land_sea_mask"] > 0.5
    rural = land & (static.urban_index < 0.05) & (gen.static_fields()["orography"] < 1000)
    days = 31 if not quick else 10
    o3 = np.stack([
        np.stack([gen.analysis("o3", datetime(year, 7, 1) + timedelta(days=d, hours=h)) for h in range(24)])
        for d in tqdm(range(days), desc=f"O3 in July on {domain}", unit="day")
    ])  # fmt: skip
    rows.append(row("domain", "O3 > 180 µg/m³, share of July land cell-hours (%)", None,
                    100 * float((o3[:, :, land] > 180).mean()), ("range", 0.0, 1.0)))  # fmt: skip
    maxima = o3.max(axis=1)[:, rural]
    rows.append(row("domain", "rural July daily O3 maxima within 90–170 (% of cell-days)", None,
                    100 * float(((maxima >= 90) & (maxima <= 170)).mean()), ("range", 60.0, 100.0)))  # fmt: skip
    po = SyntheticGenerator(parse_domain(PO_VALLEY), seed)
    po_rural = (po.static_fields()["land_sea_mask"] > 0.9) & (po.static.urban_index < 0.1)
    po_rural &= po.static_fields()["orography"] < 300
    january = np.mean(
        [po.analysis("no2", datetime(year, 1, 1) + timedelta(hours=h)) for h in range(0, 24 * days, 3)],
        axis=0,
    )
    rows.append(row("domain", "NO2 January mean, rural Po Valley (median of cells, µg/m³)", None,
                    float(np.median(january[po_rural])), ("range", 10.0, 60.0)))  # fmt: skip
    for name, cell, band in (("southern Mediterranean (37.45 N 14.95 E)", SICILY, ("range", 8.0, 120.0)),
                             ("Milan", MILAN, ("range", 1.0, 25.0))):  # fmt: skip
        gen_cell = SyntheticGenerator(parse_domain(cell), seed)
        first = (datetime(year, 1, 1) - datetime(2000, 1, 1)).days
        daily = [np.mean([gen_cell.chemistry.hour(24 * d + h).dust[0, 0] for h in range(0, 24, 6)])
                 for d in range(first, first + (365 if not quick else 120))]  # fmt: skip
        rows.append(row("domain", f"Saharan dust days (daily mean > 20 µg/m³) a year, {name}", None,
                        float(np.sum(np.array(daily) > 20) * (1 if not quick else 365 / 120)), band))  # fmt: skip
    return rows


def skill_rows(seed: int, domain: str, start: datetime, quick: bool) -> list[dict]:
    """The median against the members; a per-gridpoint de-biasing fitted on 4 weeks, scored on the next 4."""
    weeks = 4 if not quick else 2
    runs = [start + timedelta(days=d) for d in range(14 * weeks)]
    leads = list(range(0, 97, 12))
    gen = SyntheticGenerator(parse_domain(domain), seed)
    members = {sp: [] for sp in SPECIES}
    target = {sp: [] for sp in SPECIES}
    for run in tqdm(runs, desc=f"skill runs on {domain}", unit="run"):
        for sp in SPECIES:
            members[sp].append(np.stack([gen.members(sp, run, lead) for lead in leads]))
            target[sp].append(np.stack([gen.analysis(sp, run + timedelta(hours=lead)) for lead in leads]))
    rows = []
    train, test = slice(0, 7 * weeks), slice(7 * weeks, 14 * weeks)
    blocks = np.array([lead_block(lead) for lead in leads])
    best_members = set()
    for sp in SPECIES:
        m = np.stack(members[sp])  # (run, lead, member, lat, lon)
        a = np.stack(target[sp])  # (run, lead, lat, lon)
        median = np.stack([[member_median(f) for f in per_run] for per_run in m])
        test_m, test_a, test_med = m[test], a[test], median[test]
        member_rmse = np.array([rmse(test_m[:, :, k], test_a) for k in range(len(MEMBERS))])
        median_rmse = rmse(test_med, test_a)
        best = np.nanmin(member_rmse)
        corrected = debiased(m[train], a[train], test_m, test_a)
        sse = np.stack([*(run_sse(test_m[:, :, k], test_a) for k in range(len(MEMBERS))),
                        run_sse(test_med, test_a), run_sse(corrected, test_a)])  # fmt: skip
        rows.append(row("skill", f"{sp} median / best member RMSE", None, median_rmse / best, ("range", 0.8, 0.97),
                        ratio_interval(sse, lambda r: r[-2] / np.nanmin(r[:-2], axis=0))))  # fmt: skip
        rows.append(row("skill", f"{sp} members the median beats (of 11)", None,
                        float(np.sum(member_rmse > median_rmse)), ("range", 8.0, 11.0)))  # fmt: skip
        day1 = rmse(test_med[:, blocks == "000-024"], test_a[:, blocks == "000-024"])
        day4 = rmse(test_med[:, blocks == "073-096"], test_a[:, blocks == "073-096"])
        rows.append(row("skill", f"{sp} median RMSE, day 4 / day 1", None, day4 / day1, ("range", 1.1, 4.0)))
        half = m.shape[-2] // 2
        for b in LEAD_BLOCKS:
            for part in (slice(0, half), slice(half, None)):
                sel = blocks == b
                scores = [
                    rmse(test_m[:, sel, k][..., part, :], test_a[:, sel][..., part, :])
                    for k in range(len(MEMBERS))
                ]
                best_members.add(int(np.nanargmin(scores)))
        rows.append(row("skill", f"{sp} de-biased, inverse-variance weighted / median RMSE", None,
                        rmse(corrected, test_a) / median_rmse, ("range", 0.8, 0.95),
                        ratio_interval(sse, lambda r: r[-1] / r[-2])))  # fmt: skip
    rows.append(row("skill", "distinct best members over species × lead block × domain half", None,
                    float(len(best_members)), ("range", 3.0, 11.0)))  # fmt: skip
    return rows


def run_sse(forecast: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, run): the sum of squared errors and the count of finite pairs of each run (the first axis)."""
    err = (forecast - target).reshape(len(forecast), -1)
    ok = np.isfinite(err)
    return np.stack([np.square(np.where(ok, err, 0.0)).sum(axis=1), ok.sum(axis=1)])


def ratio_interval(sse: np.ndarray, ratio) -> tuple[float, float]:
    """The central INTERVAL of `ratio` (a function of the products' RMSEs, (P,)) over a moving-block
    bootstrap of the runs; `sse` is (P, 2, run) from `run_sse`."""
    draws = block_draws(sse.shape[-1], RESAMPLES, BLOCK, np.random.default_rng(0))
    totals = sse[..., draws].sum(axis=-1)  # (P, 2, resamples)
    values = ratio(np.sqrt(totals[:, 0] / totals[:, 1]))
    low, high = np.quantile(values, [(1 - INTERVAL) / 2, (1 + INTERVAL) / 2])
    return float(low), float(high)


def debiased(train_m, train_a, test_m, test_a) -> np.ndarray:
    """The test runs' forecast of the per-gridpoint, per-member, per-lead log de-biasing with
    inverse-variance weights fitted on the training runs."""
    err = np.log1p(train_m) - np.log1p(train_a)[:, :, None]  # (run, lead, member, y, x)
    bias = np.nanmean(err, axis=0)
    var = np.nanvar(err - bias, axis=0) + 1e-4
    corrected = np.expm1(np.log1p(test_m) - bias)
    weight = np.where(np.isfinite(corrected), 1.0 / var, 0.0)
    return np.nansum(np.nan_to_num(corrected) * weight, axis=2) / weight.sum(axis=2)


def station_rows(seed: int, year: int, real: dict, quick: bool) -> list[dict]:
    """The median's day-0 forecast (leads 0–21) at the synthetic stations of the real file (the EEA NRT
    background stations there, by code) on the full grid, March 1–7 of `year` (a week: one weather regime
    is not a climate of errors)."""
    gen = SyntheticGenerator(parse_domain("full" if not quick else "demo"), seed)
    stations = gen.observing.stations
    codes = stations.table["code"].to_numpy()
    errors = {sp: [] for sp in STATION_SPECIES}
    observed = {sp: [] for sp in STATION_SPECIES}
    for run in tqdm([datetime(year, 3, 1) + timedelta(days=d) for d in range(STATION_DAYS if not quick else 1)],
                    desc="station day-0 forecasts", unit="run"):  # fmt: skip
        for lead in range(0, 24, 3):
            for sp in STATION_SPECIES:
                forecast = stations.sample(member_median(gen.members(sp, run, lead)))
                obs = gen.observations(sp, run + timedelta(hours=lead))
                ok = np.isfinite(obs) & np.isin(codes, list(real[sp]["codes"]))
                errors[sp].append(forecast[ok] - obs[ok])
                observed[sp].append(obs[ok])
    rows = []
    for sp in STATION_SPECIES:
        err = np.concatenate(errors[sp])
        rows.append(row("stations", f"{sp} median day 0 RMSE at stations (µg/m³)", real[sp]["rmse"],
                        float(np.sqrt(np.mean(err**2))), ("ratio", 1.3)))  # fmt: skip
        rows.append(row("stations", f"{sp} median day 0 bias at stations (µg/m³)", real[sp]["bias"],
                        float(err.mean()), ("sign", 2.0)))  # fmt: skip
        rows.append(row("stations", f"{sp} observed mean (µg/m³)", real[sp]["observed_mean"],
                        float(np.concatenate(observed[sp]).mean()), ("ratio", 1.5)))  # fmt: skip
    return rows


def print_table(rows: list[dict]) -> None:
    print(f"\n{'section':<9} {'statistic':<66} {'real':>9} {'synthetic':>10}  {'band':<16} verdict")
    for r in rows:
        real = "" if r["real"] is None else f"{r['real']:.3g}"
        interval = f"  (90 %: {r['interval'][0]:.3g}–{r['interval'][1]:.3g})" if "interval" in r else ""
        print(
            f"{r['section']:<9} {r['statistic']:<66} {real:>9} {r['synthetic']:>10.3g}  {r['band']:<16} "
            + ("PASS" if r["verdict"] == "PASS" else miss_text(r))
            + interval
        )


def cell(r: dict) -> str:
    """A row's value in a markdown table: its verdict if missed (*miss*: within the draw's sampling), its
    sampling interval where it has one."""
    text = f"{r['synthetic']:.3g}"
    if r["verdict"] != "PASS":
        text += " *miss*" if r.get("clear") is False else " **MISS**"
    return text + (f" ({r['interval'][0]:.2f}–{r['interval'][1]:.2f})" if "interval" in r else "")


def pass_count(rows: list[dict]) -> str:
    """'n/N', and how many of the misses lie within their draw's sampling."""
    passed = sum(r["verdict"] == "PASS" for r in rows)
    within = sum(r.get("clear") is False for r in rows)
    return f"{passed}/{len(rows)}" + (f" ({within} of the misses within sampling)" if within else "")


def markdown_table(results: list[dict]) -> str:
    """One markdown table of several saved runs (their --json files): real, one column per run, band."""
    heads = [f"seed {r['meta']['seed']}, {r['meta']['start']}" for r in results]
    lines = [
        "| section | statistic | real | " + " | ".join(heads) + " | band |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in heads) + " | --- |",
    ]
    by_run = [{(row["section"], row["statistic"]): row for row in r["rows"]} for r in results]
    for key, first in by_run[0].items():
        real = "" if first["real"] is None else f"{first['real']:.3g}"
        cells = [cell(run[key]) if key in run else "" for run in by_run]
        lines.append(f"| {key[0]} | {key[1]} | {real} | " + " | ".join(cells) + f" | {first['band']} |")
    lines.append("")
    lines.append("PASS: " + ", ".join(f"{h}: {pass_count(r['rows'])}" for h, r in zip(heads, results)))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=lambda s: datetime.strptime(s, "%Y-%m-%d"), default=datetime(2025, 1, 1),
                        help="first run of the skill section; its year is the year of the Milan, domain and station sections")  # fmt: skip
    parser.add_argument("--domain", default="demo", help="domain of the July O3 and skill sections")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "synthetic.json")
    parser.add_argument(
        "--quick", action="store_true", help="shorter periods and the demo crop for the stations"
    )
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--markdown", type=Path, nargs="+", metavar="JSON",
                        help="print one markdown table of these saved runs and exit (docs/synthetic.md)")  # fmt: skip
    args = parser.parse_args()
    if args.markdown:
        print(markdown_table([json.loads(path.read_text()) for path in args.markdown]))
        return 0
    started = time.perf_counter()
    try:
        milan, stations = real_milan(), real_stations()
    except (OSError, ValueError, KeyError) as exc:
        print(f"bench/synthetic.py: cannot read the real data: {exc}", file=sys.stderr)
        return 2
    year, sections = args.start.year, args.sections.split(",")
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown sections {unknown}; known: {', '.join(SECTIONS)}")
    rows = []
    if "milan" in sections:
        rows += milan_rows(args.seed, year, milan, args.quick)
    if "domain" in sections:
        rows += domain_rows(args.seed, args.domain, year, args.quick)
    if "skill" in sections:
        rows += skill_rows(args.seed, args.domain, args.start, args.quick)
    if "stations" in sections:
        rows += station_rows(args.seed, year, stations, args.quick)
    print_table(rows)
    missed = [r for r in rows if r["verdict"] == "MISS"]
    minutes = (time.perf_counter() - started) / 60
    print(f"\n{pass_count(rows)} PASS; seed {args.seed}, start {args.start:%Y-%m-%d}, domain "
          f"{args.domain}{' (quick)' if args.quick else ''}, sections {args.sections}; {minutes:.1f} min on {platform.machine()}")  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "meta": {"seed": args.seed, "start": f"{args.start:%Y-%m-%d}", "domain": args.domain, "quick": args.quick,
                 "sections": sections,
                 "minutes": minutes, "created": datetime.now().isoformat(timespec="seconds"),
                 "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}"},
        "rows": rows,
    }, indent=1))  # fmt: skip
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
