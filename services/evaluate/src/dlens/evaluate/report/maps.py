"""Map panels of one species: RMSE of the reference, then each product's RMSE gain over it."""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from dlens.evaluate.report.coastlines import coastline_segments
from dlens.evaluate.report.figures import plain

MAX_COLS = 4


def rmse_field(maps: xr.Dataset | None, product: str, species: str) -> np.ndarray | None:
    """The (latitude, longitude) RMSE map of a product and species; None where absent or all NaN."""
    if maps is None or "rmse" not in maps or "product" not in maps.coords or "species" not in maps.coords:
        return None
    if product not in maps["product"].values or species not in maps["species"].values:
        return None
    field = maps["rmse"].sel(product=product, species=species).transpose("latitude", "longitude")
    values = np.asarray(field.values, dtype=np.float64)
    return values if np.isfinite(values).any() else None


def gain_summary(gain: np.ndarray) -> str:
    """Domain mean of a gain map and the share of cells where the product is better."""
    valid = gain[np.isfinite(gain)]
    return f"mean {np.mean(valid):+.2f}, better in {100 * np.mean(valid > 0):.0f}% of cells"


def map_figure(
    maps: xr.Dataset | None, species: str, reference: str, products: list[str], units: str
) -> Figure | None:
    """Reference RMSE and gain = RMSE(reference) − RMSE(product) (blue = better) per product.

    None when the reference and every product lack a map of the species.
    """
    if maps is None or "latitude" not in maps.coords or "longitude" not in maps.coords:
        return None
    maps = maps.sortby(["latitude", "longitude"])
    ref = rmse_field(maps, reference, species)
    fields = {p: rmse_field(maps, p, species) for p in products}
    if ref is None and all(f is None for f in fields.values()):
        return None
    lat = np.asarray(maps["latitude"].values, dtype=np.float64)
    lon = np.asarray(maps["longitude"].values, dtype=np.float64)
    extent = extent_of(lat, lon)
    gains, span = gains_and_span(ref, fields, 98)

    n_panels = 1 + len(products)
    fig, axes, aspect = panel_figure(n_panels, extent)

    image_kw = {"extent": extent, "origin": "lower", "interpolation": "nearest", "aspect": aspect}
    ref_ax, gain_axes, gain_image = axes[0], [], None
    if ref is None:
        no_data(ref_ax)
    else:
        vmax = float(np.nanpercentile(ref, 98)) or 1.0
        image = ref_ax.imshow(ref, cmap="YlOrRd", vmin=0, vmax=vmax, **image_kw)
        fig.colorbar(image, ax=ref_ax, shrink=0.85, label=f"RMSE ({units})", extend="max")
    ref_ax.set_title(f"RMSE of {plain(reference)}", fontsize=10)
    for ax, product in zip(axes[1:], products):
        gain = gains[product]
        if gain is None or not np.isfinite(gain).any():
            no_data(ax)
            ax.set_title(f"gain of {plain(product)}", fontsize=10)
        else:
            gain_image = ax.imshow(gain, cmap="RdBu", vmin=-span, vmax=span, **image_kw)
            ax.set_title(f"gain of {plain(product)}\n({gain_summary(gain)})", fontsize=9)
            gain_axes.append(ax)
    label = f"gain = RMSE({plain(reference)}) − RMSE(product) ({units}); blue = better"
    finish_panels(fig, axes, n_panels, extent, aspect, gain_axes, gain_image, label)
    ref_name = plain(reference)
    fig.suptitle(f"{plain(species)}: RMSE of {ref_name} and RMSE gain over {ref_name}", fontsize=11)
    return fig


def gains_and_span(
    ref: np.ndarray | None, values: dict[str, np.ndarray | None], percentile: float
) -> tuple[dict[str, np.ndarray | None], float]:
    """Gain = ref − value per product (None where either is missing), and the colour span of the gain
    panels: the `percentile` of the absolute finite gains (1 where there are none)."""
    gains = {p: (ref - v if ref is not None and v is not None else None) for p, v in values.items()}
    finite = [np.abs(g[np.isfinite(g)]) for g in gains.values() if g is not None]
    finite = [g for g in finite if g.size]
    span = float(np.percentile(np.concatenate(finite), percentile)) if finite else 1.0
    return gains, span if span > 0 else 1.0


def panel_figure(
    n_panels: int, extent: tuple[float, float, float, float]
) -> tuple[Figure, np.ndarray, float, int]:
    """A figure of `n_panels` map panels of `extent` (west, east, south, north): the figure, its axes (flat,
    spare ones included), the panels' aspect and the number of rows."""
    ncols = n_panels if n_panels <= 3 else 2 if n_panels == 4 else MAX_COLS if n_panels > 9 else 3
    nrows = math.ceil(n_panels / ncols)
    aspect = 1 / max(math.cos(math.radians(float(np.mean(extent[2:])))), 0.1)
    panel_w = 4.6
    panel_h = panel_w * aspect * (extent[3] - extent[2]) / max(extent[1] - extent[0], 1e-6) + 0.6
    fig = Figure(figsize=(panel_w * ncols + 1.2, panel_h * nrows), dpi=100, layout="constrained")
    return fig, np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel(), aspect


def finish_panels(
    fig: Figure,
    axes: np.ndarray,
    n_panels: int,
    extent: tuple[float, float, float, float],
    aspect: float,
    gain_axes: list,
    gain_image,
    label: str,
) -> None:
    """Coastlines (under the data) and degree labels on the first `n_panels` axes, the others hidden, and
    one colour bar labelled `label` for the gain panels (none when `gain_image` is None)."""
    segments = coastline_segments(extent[2], extent[3], extent[0], extent[1])
    for ax in axes[:n_panels]:
        ax.add_collection(LineCollection(segments, colors="black", linewidths=0.6, zorder=1))
        geo_axes(ax, extent, aspect)
    for ax in axes[n_panels:]:
        ax.axis("off")
    if gain_image is not None:
        shrink = 0.8 if axes[0].get_subplotspec().get_gridspec().nrows == 1 else 0.6
        fig.colorbar(gain_image, ax=gain_axes, shrink=shrink, aspect=30, label=label, extend="both")


def extent_of(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float, float, float]:
    """(west, east, south, north) of the cell edges, assuming regular cell centres."""
    dlat = float(np.median(np.diff(lat))) if lat.size > 1 else 0.1
    dlon = float(np.median(np.diff(lon))) if lon.size > 1 else 0.1
    return (lon[0] - dlon / 2, lon[-1] + dlon / 2, lat[0] - dlat / 2, lat[-1] + dlat / 2)


def no_data(ax) -> None:
    """Grey the panel and say "no data" in it."""
    ax.set_facecolor("0.9")
    ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.3", fontsize=12)


def geo_axes(ax, extent: tuple[float, float, float, float], aspect: float) -> None:
    """Limits, aspect and degree labels of a map panel."""
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect(aspect)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}°{'E' if v >= 0 else 'W'}"))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{abs(v):g}°{'N' if v >= 0 else 'S'}"))
    ax.tick_params(labelsize=8)
