"""`write_report`: the report directory (index.html, figures/*.png, metrics.json, maps.nc)."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import xarray as xr
from matplotlib.figure import Figure
from tqdm import tqdm

from dlens.evaluate.report.figures import lead_figure
from dlens.evaluate.report.maps import map_figure
from dlens.evaluate.report.page import page_html
from dlens.evaluate.report.records import build_context, json_ready
from dlens.evaluate.report.sections import FigureRef, species_html
from dlens.evaluate.report.station_maps import station_figure
from dlens.evaluate.report.tables import slug

DPI = 100


def _coord_values(maps: xr.Dataset | None, name: str) -> list[str]:
    if maps is None or name not in maps.coords:
        return []
    return [str(v) for v in maps[name].values.ravel()]


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    with path.open("rb") as f:
        header = f.read(24)
    return struct.unpack(">II", header[16:24])


def write_report(metrics: dict, maps: xr.Dataset, out_dir: Path, progress: bool = True) -> Path:
    """Write out_dir/index.html, out_dir/figures/*.png, out_dir/metrics.json and out_dir/maps.nc.

    metrics.json is `metrics` with NaN as null; maps.nc is `maps` as given. Figures are linked by
    relative paths, so the directory can be copied anywhere. Returns the path of index.html.
    """
    out_dir = Path(out_dir)
    figures_dir = out_dir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "metrics.json").open("w", encoding="utf-8") as f:
        json.dump(json_ready(metrics), f, allow_nan=False, ensure_ascii=False, indent=1)
    if maps is not None:
        maps.to_netcdf(out_dir / "maps.nc")

    ctx = build_context(metrics, _coord_values(maps, "product"), _coord_values(maps, "species"))
    jobs: list[tuple[int, str, str, str, Callable[[], Figure | None]]] = []
    for i, species in enumerate(ctx.species):
        stem = f"{i:02d}-{slug(species)}".rstrip("-")
        n_lines = len(ctx.products)
        jobs.append(
            (
                i,
                "leads",
                f"leads-{stem}.png",
                f"{species}: RMSE and bias against lead time for {n_lines} products "
                f"(members thin grey, {ctx.reference} black, DL-ENS products bold)",
                lambda s=species: lead_figure(ctx, s),
            )
        )
        compared = ", ".join(ctx.compared) or "no other product"
        jobs.append(
            (
                i,
                "maps",
                f"maps-{stem}.png",
                f"{species} maps: RMSE of {ctx.reference} and RMSE gain over {ctx.reference} of {compared}",
                lambda s=species: map_figure(maps, s, ctx.reference, ctx.compared, ctx.units),
            )
        )
        jobs.append(
            (
                i,
                "stations",
                f"stations-{stem}.png",
                f"{species} at stations: RMSE of {ctx.reference} and gain over it of {compared}",
                lambda s=species: station_figure(maps, s, ctx.reference, ctx.compared, ctx.units),
            )
        )
    refs: dict[int, dict[str, FigureRef | None]] = {i: {} for i in range(len(ctx.species))}
    for i, kind, name, alt, make in tqdm(jobs, desc="report figures", unit="fig", disable=not progress):
        fig = make()
        if fig is None:
            refs[i][kind] = None
            continue
        path = figures_dir / name
        fig.savefig(path, dpi=DPI)
        width, height = _png_size(path)
        refs[i][kind] = FigureRef(f"figures/{name}", alt, width, height)

    sections = [species_html(ctx, i, s, refs[i]) for i, s in enumerate(ctx.species)]
    index = out_dir / "index.html"
    index.write_text(page_html(ctx, sections), encoding="utf-8")
    return index
