"""`dlens-ingest export`: a training-dataset subset (period, domain, species) as a standalone store.

The subset is a DL-ENS store of its own (same layout and schema, so every dlens tool and plain xarray
read it): the member forecasts and IFS predictors of the runs in the period, the hourly analysis those
runs' leads reach (and the reanalyses, where the store has them), the static fields, all cropped to the
domain, with the statistics and normalisation recomputed on what was kept and a README.md that says
what it is. Species left out stay PENDING.
Products, models, reports and station observations are not copied: the subset is what a model is
trained on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np
from tqdm import tqdm

from dlens.common.config import get_settings
from dlens.common.grid import Domain, crop_of
from dlens.common.layout import (
    ANALYSIS,
    AXIS_GROUPS,
    FORECASTS,
    METEO,
    METEO_VARIABLES,
    STAT_NAMES,
    STATIC,
    STATIC_VARIABLES,
    STATS,
    TARGETS,
    Status,
)
from dlens.common.species import SPECIES, SPECIES_NAMES
from dlens.common.store import open_store, write_file
from dlens.common.version import code_version
from dlens.common.writer import StoreCoordinator, StoreSpec, field_stats

#: Root attributes that describe the store's own axes: the subset writes its own.
OWN_ATTRS = ("domain", "leads", "levels", "schema_version", "grid")


@dataclass
class ExportReport:
    runs: int
    analysis_times: int
    meteo_runs: int


def export_subset(
    url: str, out: str, start: date, days: int, species: Sequence[str], domain: Domain | None = None
) -> ExportReport:
    """Write the subset of the store at `url` to the new store `out`; return what it holds."""
    source = StoreCoordinator(url, read_only=True)
    crop = domain or source.spec.domain
    window = crop_of(source.spec.domain, crop)
    first = np.datetime64(start, "h")
    runs = [r for r in source.axis_values(FORECASTS) if first <= r < first + np.timedelta64(24 * days, "h")]
    if not runs:
        raise ValueError(f"no forecast run in {url!r} from {start} for {days} days")
    try:
        open_store(out, mode="r")
        raise ValueError(f"{out} exists: give a new location")
    except FileNotFoundError:
        pass
    last_valid = runs[-1] + np.timedelta64(max(source.spec.leads), "h")
    times = {
        path: [t for t in source.axis_values(path) if runs[0] <= t <= last_valid] for path in TARGETS.values()
    }
    meteo_runs = [r for r in source.axis_values(METEO) if r in set(runs)]
    dest = StoreCoordinator(out, StoreSpec(crop, source.spec.leads, source.spec.levels))
    plan = [
        (FORECASTS, runs, list(species)),
        *((path, labels, list(species)) for path, labels in times.items()),
        (METEO, meteo_runs, list(METEO_VARIABLES)),
    ]
    total = sum(len(labels) for _, labels, _ in plan)
    with tqdm(total=total, desc=f"export {out}", unit="cell", disable=not get_settings().progress) as bar:
        for path, labels, variables in plan:
            for _ in copy_group(source, dest, path, labels, variables, window):
                bar.update()
    for name in STATIC_VARIABLES:
        dest.root[f"{STATIC}/{name}"][:] = source.root[f"{STATIC}/{name}"][window]
    dest.refresh_normalisation()
    inherited = {k: v for k, v in source.root.attrs.asdict().items() if k not in OWN_ATTRS}
    export = {
        "source": url, "start": str(start), "days": days, "species": list(species), "domain": crop.spec(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "code_version": code_version("dlens-ingest"),
    }  # fmt: skip
    dest.update_attrs("", **inherited, export=export)
    write_file(out, "README.md", readme(export, runs, times[ANALYSIS], meteo_runs, crop).encode())
    return ExportReport(len(runs), len(times[ANALYSIS]), len(meteo_runs))


def copy_group(
    source: StoreCoordinator,
    dest: StoreCoordinator,
    path: str,
    labels: list[np.datetime64],
    variables: list[str],
    window: tuple[slice, slice],
) -> Iterator[None]:
    """Copy `variables` of the axis positions `labels`, cropped, then their stats and status (the commit)."""
    if not labels:
        return
    index = {t: i for i, t in enumerate(source.axis_values(path))}
    src = [index[t] for t in labels]
    dst = dest.ensure_axis(path, [t.astype("datetime64[s]").astype(datetime) for t in labels])
    status = source.status(path)[src]
    has_stats = AXIS_GROUPS[path].has_stats  # the species groups; meteo has none
    stats = np.full((len(labels), len(SPECIES_NAMES), len(STAT_NAMES)), np.nan)
    for s, d, row in zip(src, dst, range(len(labels))):
        for var in variables:
            block = source.root[f"{path}/{var}"][(s, Ellipsis, *window)]
            dest.root[f"{path}/{var}"][d] = block
            if has_stats:
                stats[row, SPECIES_NAMES.index(var)] = field_stats(block)
        yield
    if has_stats:
        left_out = [k for k, sp in enumerate(SPECIES_NAMES) if sp not in variables]
        status[..., left_out] = int(Status.PENDING)
        dest.root[f"{path}/{STATS}"].oindex[np.asarray(dst)] = stats
    dest.mark(path, dst, status)


def readme(export: dict, runs: list, times: list, meteo_runs: list, crop: Domain) -> str:
    """What the subset is, for whoever receives it."""
    species = ", ".join(f"{s} ({SPECIES[s].long_name})" for s in export["species"])
    return "\n".join([
        "# DL-ENS training dataset",
        "",
        f"A subset of the DL-ENS store `{export['source']}`, written by `dlens-ingest export` "
        f"({export['code_version']}) on {export['created']}: CAMS Regional member forecasts and the analysis "
        "they are trained against, on the MACCGE01 grid, as a Zarr v3 store.",
        "",
        f"- Species: {species}.",
        f"- Runs: {len(runs)} daily 00 UTC runs, {runs[0]} to {runs[-1]}; IFS predictors for "
        f"{len(meteo_runs)} of them.",
        f"- Analysis: {len(times)} hourly valid times" + (f", {times[0]} to {times[-1]}." if times else "."),
        f"- Domain: `{export['domain']}`, {crop.shape[0]} × {crop.shape[1]} cells.",
        "",
        "## Layout",
        "",
        "| group | variables | dims |",
        "| --- | --- | --- |",
        f"| `forecasts` | {', '.join(export['species'])} (µg/m³; NaN where a member is missing) "
        "| run, lead, member, level, latitude, longitude |",
        f"| `analysis` | {', '.join(export['species'])} (µg/m³) | time, level, latitude, longitude |",
        f"| `meteo` | {', '.join(METEO_VARIABLES)} | run, lead, latitude, longitude |",
        f"| `static` | {', '.join(STATIC_VARIABLES)} | latitude, longitude |",
        "",
        "Each run/time group has an `ingest_status` array: 1 complete, 2 absent in the source (a missing "
        "member), 0 pending (never written, or a species left out of this subset): trust only 1 and 2. "
        "`ingest_stats` and the `normalisation` attribute are computed on the subset.",
        "",
        "## Open it",
        "",
        "```python",
        "import xarray as xr",
        "",
        'forecasts = xr.open_zarr("<this directory>", group="forecasts", zarr_format=3, consolidated=False)',
        "```",
        "",
        "or point any `dlens-*` command at it (`--store <this directory>`): it is a DL-ENS store.",
        "",
        "The data are CAMS products (Copernicus Atmosphere Monitoring Service, licence: "
        "https://atmosphere.copernicus.eu/): cite the source when you use them; a synthetic store says "
        "so in its root attributes.",
        "",
        f"Root attributes: `export` = {json.dumps(export)}.",
        "",
    ])  # fmt: skip
