"""`dlens-ingest status`: what the store holds, as a table of committed cells."""

from __future__ import annotations

import numpy as np

from dlens.common.layout import (
    ANALYSIS,
    CAMS_ENSEMBLE_PRODUCT,
    FORECASTS,
    METEO,
    METEO_VARIABLES,
    OBSERVATIONS,
    TARGETS,
    Status,
)
from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.common.writer import StoreCoordinator

MARK = {Status.PENDING: ".", Status.COMPLETE: "#", Status.ABSENT: "-"}


def status_table(url: str) -> str:
    """A text table: one line per run with a mark per member for each species, then coverage."""
    coord = StoreCoordinator(url, read_only=True)
    spec = coord.spec
    lines = [
        f"store {url}: domain {spec.domain.name} {spec.domain.spec()} "
        f"({spec.domain.shape[0]}x{spec.domain.shape[1]}), "
        f"leads {spec.leads[0]}..{spec.leads[-1]} h ({len(spec.leads)}), levels {list(spec.levels)} m",
        "forecasts: one mark per member ("
        + " ".join(m[:3] for m in MEMBERS)
        + "): # complete, - absent in source, . pending",
    ]
    runs, status = coord.axis_values(FORECASTS), coord.status(FORECASTS)
    meteo_runs, meteo_status = coord.axis_values(METEO), coord.status(METEO)
    meteo_done = {r: bool(np.all(s == Status.COMPLETE)) for r, s in zip(meteo_runs, meteo_status)}
    header = f"{'run':<14}" + "".join(f"{sp:<13}" for sp in SPECIES_NAMES) + "meteo"
    lines.append(header)
    for i in np.argsort(runs):
        cells = ["".join(MARK[Status(v)] for v in status[i, :, k]) + "  " for k in range(len(SPECIES_NAMES))]
        lines.append(
            f"{str(runs[i])[:10]:<14}" + "".join(cells) + ("yes" if meteo_done.get(runs[i]) else "no")
        )
    complete = (status != Status.PENDING).all(axis=1)
    lines.append(
        f"runs: {len(runs)}; complete per species: "
        + ", ".join(f"{sp} {int(complete[:, k].sum())}" for k, sp in enumerate(SPECIES_NAMES))
        + f"; member absences: {int((status == Status.ABSENT).sum())}"
        + f"; meteo runs complete: {sum(meteo_done.values())}/{len(meteo_runs)}"
        + f" ({', '.join(METEO_VARIABLES)})"
    )
    for name, path in TARGETS.items():
        if path != ANALYSIS and path not in coord.root:
            continue
        lines.append(f"{name} coverage (hourly valid times committed):")
        lines += coverage_lines(coord, path)
    if OBSERVATIONS in coord.root:
        n = coord.root[f"{OBSERVATIONS}/station_code"].shape[0]
        lines.append(f"observations at {n} stations (hourly times committed):")
        lines += coverage_lines(coord, OBSERVATIONS)
    ens_runs, ens_status = coord.axis_values(CAMS_ENSEMBLE_PRODUCT), coord.status(CAMS_ENSEMBLE_PRODUCT)
    if len(ens_runs):
        lines.append(
            f"cams-ensemble reference product: {int((ens_status == Status.COMPLETE).any(axis=1).sum())} runs"
        )
    return "\n".join(lines)


def coverage_lines(coord: StoreCoordinator, path: str) -> list[str]:
    """Per species, the hours of an hourly group (an analysis, the observations) committed, and their span."""
    times, status = coord.axis_values(path), coord.status(path)
    lines = []
    for k, sp in enumerate(SPECIES_NAMES):
        done = times[status[:, k] == Status.COMPLETE] if len(times) else times
        span = f"{str(done.min())[:13]} .. {str(done.max())[:13]}" if len(done) else "none"
        lines.append(f"  {sp:<5} {len(done):>6} h  {span}")
    return lines
