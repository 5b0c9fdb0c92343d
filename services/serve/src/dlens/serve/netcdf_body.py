"""A NetCDF request body read into member fields, untrusted: its dimensions checked before any data is read,
a NetCDF-4 (HDF5) body refused when it reaches outside itself, and only the species variables loaded.

netCDF-C and HDF5 are not thread-safe and a body can ask for more memory than it holds: the service reads
bodies in worker processes (dlens.serve.workers), one at a time each, within a memory limit. This module
imports no torch, so that they stay small."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING

import h5py
import netCDF4
import numpy as np
import xarray as xr

from dlens.common.grid import LAT0, LON0, NLAT, NLON, Domain, domain_of, normalise_longitude
from dlens.common.species import MEMBERS, SPECIES
from dlens.serve.problems import RequestProblem, unprocessable

if TYPE_CHECKING:
    from dlens.serve.samples import Fields

#: Magic numbers: NetCDF-3 (classic, 64-bit offset) and NetCDF-4 (HDF5).
_MAGIC = (b"CDF", b"\x89HD")
#: Variables a NetCDF body may hold: the species, coordinates and a few more.
MAX_VARIABLES = 32
#: HDF5 objects (groups, datasets, named types) a NetCDF-4 body may hold: its variables, dimensions and types.
MAX_OBJECTS = 4 * MAX_VARIABLES


def read_netcdf(body: bytes) -> tuple[Fields, Domain]:
    """Member fields per species and their domain from a NetCDF body.

    One variable per species given, named like the species (`o3`) or as in CAMS files (`o3_conc`), with dims
    (member, latitude, longitude) and a `member` coordinate of member names; a `level` dim of size 1 is
    allowed. Latitude may run either way and longitude may be in [0, 360). RequestProblem saying what is off;
    MemoryError where reading it takes more memory than the process may have.
    """
    if body[:3] not in _MAGIC:
        raise RequestProblem(400, "the body is not NetCDF (neither NetCDF-3 nor NetCDF-4/HDF5)")
    try:
        if body[:3] == _MAGIC[1]:
            check_hdf5(body)
        raw = netCDF4.Dataset("request", memory=body)
        try:
            check_sizes({name: len(dim) for name, dim in raw.dimensions.items()}, len(raw.variables))
        except RequestProblem:
            raw.close()
            raise
        # Reads the coordinates; the store engine spares a search of the installed xarray backends.
        with xr.open_dataset(xr.backends.NetCDF4DataStore(raw), engine="store") as opened:
            found = {
                sp: name
                for sp in SPECIES
                for name in (sp, SPECIES[sp].forecast_variable)
                if name in opened.data_vars
            }
            ds = opened[list(found.values())].load()  # only what is read, once its size is known
    except (RequestProblem, MemoryError):
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


def check_hdf5(body: bytes) -> None:
    """Refuse a NetCDF-4 body reaching outside itself, before netCDF-C opens it (and follows it): an external
    or soft link, a variable stored in external files or a virtual dataset (HDF5 would read files of the
    server's), an object linked twice, more than MAX_OBJECTS objects. Links are read here, never followed."""
    with h5py.File(io.BytesIO(body), "r") as file:
        groups, seen = [file], set()
        while groups:
            group = groups.pop()
            for name in group:
                path = f"{group.name.rstrip('/')}/{name}"
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    raise unprocessable(f"the NetCDF body links {path} as an HDF5 {type(link).__name__}")
                item = group[name]
                if item.id in seen:
                    raise unprocessable(f"the NetCDF body links an HDF5 object twice ({path})")
                seen.add(item.id)
                if len(seen) > MAX_OBJECTS:
                    raise unprocessable(f"the NetCDF body holds more than {MAX_OBJECTS} HDF5 objects")
                if isinstance(item, h5py.Group):
                    groups.append(item)
                elif isinstance(item, h5py.Dataset):
                    create = item.id.get_create_plist()
                    if create.get_external_count():
                        raise unprocessable(f"variable {path} of the NetCDF body is stored in external files")
                    if create.get_layout() == h5py.h5d.VIRTUAL:
                        raise unprocessable(f"variable {path} of the NetCDF body is an HDF5 virtual dataset")


def prepare() -> None:
    """Read a one-cell body: what the libraries reserve on first use (pandas' pyarrow allocator: 1 GiB of
    address space) is then a worker's own, held before its memory limit is set."""
    nc = netCDF4.Dataset("prepare", "w", memory=4096, format="NETCDF4")
    for name in ("member", "latitude", "longitude"):
        nc.createDimension(name, 1)
    nc.createVariable("member", str, ("member",))[:] = np.array([MEMBERS[0]], dtype=object)
    nc.createVariable("latitude", "f8", ("latitude",))[:] = LAT0
    nc.createVariable("longitude", "f8", ("longitude",))[:] = LON0
    nc.createVariable("o3", "f4", ("member", "latitude", "longitude"))[:] = 1.0
    read_netcdf(bytes(nc.close()))
