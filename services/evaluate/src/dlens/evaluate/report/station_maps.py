"""Station panels of one species: RMSE of the reference at each station, then each product's RMSE gain."""

from __future__ import annotations

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from dlens.evaluate.report.figures import plain
from dlens.evaluate.report.maps import extent_of, finish_panels, gains_and_span, no_data, panel_figure

#: Marker of the stations scored together (circles) and of the withheld ones (triangles).
MARKERS = {False: "o", True: "^"}


def station_rmse(maps: xr.Dataset, product: str, species: str) -> np.ndarray | None:
    """(station,) RMSE of a product and species at the stations; None where absent or all NaN."""
    if product not in maps["product"].values or species not in maps["species"].values:
        return None
    values = np.asarray(maps["station_rmse"].sel(product=product, species=species).values, dtype=np.float64)
    return values if np.isfinite(values).any() else None


def station_figure(
    maps: xr.Dataset | None, species: str, reference: str, products: list[str], units: str
) -> Figure | None:
    """Reference RMSE and gain = RMSE(reference) − RMSE(product) (blue = better) at each station, withheld
    stations as triangles; None when the maps hold no station scores of the species."""
    if maps is None or "station_rmse" not in maps or "species" not in maps.coords:
        return None
    ref = station_rmse(maps, reference, species)
    values = {p: station_rmse(maps, p, species) for p in products}
    if ref is None and all(v is None for v in values.values()):
        return None
    lat = np.asarray(maps["station_latitude"].values, dtype=np.float64)
    lon = np.asarray(maps["station_longitude"].values, dtype=np.float64)
    withheld = np.asarray(maps["withheld"].values, dtype=bool)
    extent = extent_of(np.sort(maps["latitude"].values), np.sort(maps["longitude"].values))
    gains, span = gains_and_span(ref, values, 95)

    n_panels = 1 + len(products)
    fig, axes, aspect = panel_figure(n_panels, extent)
    if ref is None:
        no_data(axes[0])
    else:
        vmax = float(np.nanpercentile(ref, 98)) or 1.0
        image = _scatter(axes[0], lon, lat, withheld, ref, "YlOrRd", 0.0, vmax)
        fig.colorbar(image, ax=axes[0], shrink=0.85, label=f"RMSE ({units})", extend="max")
    axes[0].set_title(f"RMSE of {plain(reference)} at stations", fontsize=10)
    gain_axes, gain_image = [], None
    for ax, product in zip(axes[1:], products):
        gain = gains[product]
        if gain is None or not np.isfinite(gain).any():
            no_data(ax)
            ax.set_title(f"gain of {plain(product)}", fontsize=10)
            continue
        gain_image = _scatter(ax, lon, lat, withheld, gain, "RdBu", -span, span)
        valid = gain[np.isfinite(gain)]
        ax.set_title(
            f"gain of {plain(product)}\n(better at {np.mean(valid > 0):.0%} of {valid.size} stations)",
            fontsize=9,
        )
        gain_axes.append(ax)
    label = f"gain = RMSE({plain(reference)}) − RMSE(product) ({units}); blue = better"
    finish_panels(fig, axes, n_panels, extent, aspect, gain_axes, gain_image, label)
    fig.suptitle(
        f"{plain(species)} at stations (withheld: triangles): RMSE of {plain(reference)} and gain over it",
        fontsize=11,
    )
    return fig


def _scatter(ax, lon, lat, withheld, values, cmap: str, vmin: float, vmax: float):
    """Stations coloured by `values` (NaN left out), a marker per withheld state; the last collection."""
    image = None
    for state, marker in MARKERS.items():
        keep = (withheld == state) & np.isfinite(values)
        if keep.any():
            image = ax.scatter(
                lon[keep], lat[keep], c=values[keep], cmap=cmap, vmin=vmin, vmax=vmax, marker=marker,
                s=22 if state else 16, edgecolors="0.2" if state else "none", linewidths=0.5, zorder=2,
            )  # fmt: skip
    return image
