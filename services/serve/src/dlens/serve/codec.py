"""Request and response bodies besides JSON: NetCDF in and out, PNG maps out."""

from __future__ import annotations

import io
import threading
from collections.abc import Mapping

import netCDF4
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from dlens.common.grid import NLAT, NLON, Domain, domain_of, normalise_longitude
from dlens.common.species import MEMBERS, SPECIES
from dlens.serve.problems import RequestProblem, unprocessable
from dlens.serve.samples import Fields

NETCDF = "application/x-netcdf"
PNG = "image/png"
#: Magic numbers: NetCDF-3 (classic, 64-bit offset) and NetCDF-4 (HDF5).
_MAGIC = (b"CDF", b"\x89HD")
#: Variables a NetCDF body may hold: the species, coordinates and a few more.
MAX_VARIABLES = 32
#: netCDF-C and HDF5 are not thread-safe, and bodies are read in worker threads: one at a time.
_NETCDF_LIBRARY = threading.Lock()


def read_netcdf(body: bytes) -> tuple[Fields, Domain]:
    """Member fields per species and their domain from a NetCDF body.

    One variable per species given, named like the species (`o3`) or as in CAMS files (`o3_conc`), with dims
    (member, latitude, longitude) and a `member` coordinate of member names; a `level` dim of size 1 is
    allowed. Latitude may run either way and longitude may be in [0, 360). RequestProblem saying what is off.
    """
    if body[:3] not in _MAGIC:
        raise RequestProblem(400, "the body is not NetCDF (neither NetCDF-3 nor NetCDF-4/HDF5)")
    try:
        with _NETCDF_LIBRARY:
            raw = netCDF4.Dataset("request", memory=body)
            try:
                check_sizes({name: len(dim) for name, dim in raw.dimensions.items()}, len(raw.variables))
            except RequestProblem:
                raw.close()
                raise
            with xr.open_dataset(xr.backends.NetCDF4DataStore(raw)) as opened:  # reads the coordinates
                found = {
                    sp: name
                    for sp in SPECIES
                    for name in (sp, SPECIES[sp].forecast_variable)
                    if name in opened.data_vars
                }
                ds = opened[list(found.values())].load()  # only what is read, once its size is known
    except RequestProblem:
        raise
    except Exception as exc:  # a malformed file fails in the format library, with its own exception types
        raise RequestProblem(400, f"malformed NetCDF: {type(exc).__name__}: {exc}") from None
    if not found:
        names = ", ".join(f"{sp} (or {s.forecast_variable})" for sp, s in SPECIES.items())
        raise unprocessable(f"no species variable in the NetCDF body; expected one of {names}")
    fields: Fields = {}
    domain = None
    for sp, name in found.items():
        da = ds[name].squeeze("level") if "level" in ds[name].dims and ds.sizes["level"] == 1 else ds[name]
        if set(da.dims) != {"member", "latitude", "longitude"}:
            raise unprocessable(f"variable {name} has dims {da.dims}; expected (member, latitude, longitude)")
        if "member" not in da.coords:
            raise unprocessable(f"variable {name} has no member coordinate naming its members")
        da = da.assign_coords(longitude=normalise_longitude(da.longitude.values)).sortby(
            ["latitude", "longitude"]
        )
        try:
            here = domain_of(da.latitude.values, da.longitude.values)
        except ValueError as exc:
            raise unprocessable(f"variable {name}: {exc}") from None
        if domain is not None and here != domain:
            raise unprocessable("the species variables are on different domains")
        domain = here
        fields[sp] = {}
        for label in da.member.values:
            try:
                member = label.decode() if isinstance(label, bytes) else str(label)
            except UnicodeDecodeError:
                raise unprocessable(f"variable {name}: a member label is not UTF-8 text") from None
            if member not in MEMBERS:
                raise unprocessable(
                    f"variable {name}: unknown member {member!r}; members: {', '.join(MEMBERS)}"
                )
            fields[sp][member] = da.sel(member=label).transpose("latitude", "longitude").values
    assert domain is not None
    return fields, domain


def check_sizes(sizes: Mapping[str, int], variables: int) -> None:
    """Refuse a body whose declared dimensions could not hold a request, before any data is read: empty
    dimensions, dimensions beyond the MACCGE01 grid or the member count, or too many variables (a small body
    can declare terabytes)."""
    if variables > MAX_VARIABLES:
        raise unprocessable(f"the NetCDF body has {variables} variables; at most {MAX_VARIABLES} are read")
    limits = {"member": len(MEMBERS), "latitude": NLAT, "longitude": NLON, "level": 1}
    for dim, size in sizes.items():
        limit = limits.get(dim, max(NLAT, NLON))
        if size == 0:
            raise unprocessable(f"dimension {dim} of the NetCDF body is empty")
        if size > limit:
            raise unprocessable(f"dimension {dim} of the NetCDF body has {size} values; at most {limit}")


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
