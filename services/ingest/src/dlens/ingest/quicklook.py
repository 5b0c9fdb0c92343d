"""`dlens-ingest plot`: a quick-look map of one run, lead and species from the store.

Panels: the analysis at the valid time, the median of the available members, median minus
analysis, then each member, all on one colour scale, each titled with its RMSE against the
analysis. Missing members are shown as such.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from dlens.common.layout import ANALYSIS, FORECASTS, Status
from dlens.common.species import MEMBERS, SPECIES
from dlens.common.store import open_dataset


def _rmse(field: np.ndarray, reference: np.ndarray | None) -> str:
    if reference is None or not np.isfinite(field).any():
        return ""
    return f"  RMSE {np.sqrt(np.nanmean((field - reference) ** 2)):.1f}"


def quicklook(store: str, species: str, run: datetime | None, lead: int, out: Path, level: int = 0) -> Path:
    """Draw the quick-look PNG and return its path; ValueError when the store lacks the cell."""
    fc = open_dataset(store, FORECASTS)
    status = fc["ingest_status"].sel(species=species)
    complete_runs = fc["run"].values[(status.values != Status.PENDING).all(axis=1)]
    if not len(complete_runs):
        raise ValueError(f"store {store!r} has no complete run of {species}")
    run64 = np.datetime64(run, "ns") if run else np.sort(complete_runs)[-1]
    if run64 not in complete_runs:
        raise ValueError(f"run {str(run64)[:13]} of {species} is not complete in {store!r}")
    if lead not in fc["lead"].values:
        raise ValueError(f"lead {lead} h is not kept in the store (leads {list(fc['lead'].values)})")
    members = fc[species].sel(run=run64, lead=lead, level=level).values
    valid = run64 + np.timedelta64(lead, "h")
    an = open_dataset(store, ANALYSIS)
    analysis = None
    if valid in an["time"].values and an["ingest_status"].sel(time=valid, species=species) == Status.COMPLETE:
        analysis = an[species].sel(time=valid, level=level).values
    present = np.isfinite(members).any(axis=(1, 2))
    median = np.median(members[present], axis=0)

    lat, lon = fc["latitude"].values, fc["longitude"].values
    stack = np.concatenate(
        [members[present], median[None]] + ([analysis[None]] if analysis is not None else [])
    )
    vmin, vmax = np.nanpercentile(stack, [1, 99])
    panels: list[tuple[str, np.ndarray | None, str]] = [
        ("analysis" if analysis is not None else "analysis (not in store)", analysis, "field"),
        ("median of members" + _rmse(median, analysis), median, "field"),
        ("median − analysis", None if analysis is None else median - analysis, "diff"),
    ]
    panels += [
        (f"{m}{_rmse(members[k], analysis)}" if present[k] else f"{m}: missing", members[k], "field")
        for k, m in enumerate(MEMBERS)
    ]
    fig = Figure(figsize=(16, 13), layout="constrained")  # no pyplot: no global state, no GUI backend
    axes = fig.subplots(4, 4, sharex=True, sharey=True)
    field_image = diff_image = None
    for ax, (title, data, kind) in zip(axes.flat, panels):
        ax.set_title(title, fontsize=10)
        if data is None or not np.isfinite(data).any():
            ax.set_facecolor("0.85")
            continue
        if kind == "diff":
            span = float(np.nanpercentile(np.abs(data), 99)) or 1.0
            diff_image = ax.pcolormesh(
                lon, lat, data, cmap="RdBu_r", vmin=-span, vmax=span, shading="nearest"
            )
        else:
            field_image = ax.pcolormesh(
                lon, lat, data, cmap="viridis", vmin=vmin, vmax=vmax, shading="nearest"
            )
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    units = SPECIES[species].units
    if field_image is not None:
        fig.colorbar(field_image, ax=axes[:, -1], label=f"{species} ({units})", shrink=0.6)
    if diff_image is not None:
        fig.colorbar(diff_image, ax=axes[0, 2], label=f"median − analysis ({units})", shrink=0.8)
    run_text = str(run64)[:13].replace("T", " ")
    fig.suptitle(
        f"{species.upper()} run {run_text} UTC + {lead} h (valid {str(valid)[:13].replace('T', ' ')} UTC)"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    return out
