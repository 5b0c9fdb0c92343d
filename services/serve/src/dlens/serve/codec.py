"""Response bodies besides JSON: NetCDF and PNG maps (NetCDF request bodies: netcdf_body)."""

from __future__ import annotations

import io

import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from dlens.common.grid import Domain

NETCDF = "application/x-netcdf"
PNG = "image/png"


def write_netcdf(fields: dict[str, np.ndarray], domain: Domain, attrs: dict) -> bytes:
    """Fields (latitude, longitude) in µg/m³ on `domain` as NetCDF-3 bytes, with global `attrs`."""
    coords = {"latitude": ("latitude", domain.latitude), "longitude": ("longitude", domain.longitude)}
    data_vars = {
        name: (("latitude", "longitude"), np.asarray(field, dtype=np.float32), {"units": "µg/m3"})
        for name, field in fields.items()
    }
    ds = xr.Dataset(data_vars, coords, attrs={k: str(v) for k, v in attrs.items()})
    return bytes(ds.to_netcdf(engine="scipy"))


def render_png(species: str, dlens: np.ndarray, median: np.ndarray, domain: Domain, title: str) -> bytes:
    """Three maps side by side: the median, DL-ENS and DL-ENS − median."""
    south, north, west, east = domain.bounds
    extent = (west - 0.05, east + 0.05, south - 0.05, north + 0.05)
    high = float(np.nanpercentile(np.concatenate([dlens.ravel(), median.ravel()]), 99.5)) or 1.0
    diff = dlens - median
    span = float(np.nanmax(np.abs(diff))) or 1.0
    aspect = domain.shape[0] / domain.shape[1]
    fig = Figure(figsize=(13, 1.2 + 3.6 * aspect), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        (median, "Median ENSEMBLE", "viridis", 0.0, high),
        (dlens, "DL-ENS", "viridis", 0.0, high),
        (diff, "DL-ENS − median", "RdBu_r", -span, span),
    ]
    for ax, (field, name, cmap, low, top) in zip(axes, panels):
        image = ax.imshow(field, origin="lower", extent=extent, cmap=cmap, vmin=low, vmax=top)
        ax.set_title(name)
        ax.set_xlabel("longitude (°E)")
        fig.colorbar(image, ax=ax, shrink=0.85, label=f"{species} µg/m³")
    axes[0].set_ylabel("latitude (°N)")
    fig.suptitle(title)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=90)
    return out.getvalue()
