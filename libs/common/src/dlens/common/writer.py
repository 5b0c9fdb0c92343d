"""Building the store and committing ingested work (DESIGN §3).

Only the coordinator (the process that runs a CLI command) creates groups, grows the run/time
axes and writes ingest-status, statistics and attributes. Workers (Ray tasks) write data into
regions of a pre-sized axis through `write_field`; every region they write is a whole shard, so
no two writers ever touch the same object. A cell is marked complete only after its worker has
returned, so a crash leaves it PENDING and a re-run rewrites it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import zarr
import zarr.codecs
import zarr.errors

from dlens.common.config import get_settings
from dlens.common.grid import Domain, domain_from_bounds
from dlens.common.layout import (
    AXIS_CHUNK,
    AXIS_GROUPS,
    LABELS,
    METEO_VARIABLES,
    OBSERVATION_GROUP,
    OBSERVATIONS,
    PRODUCTS,
    SCHEMA_VERSION,
    STAT_NAMES,
    STATIC,
    STATIC_DIMS,
    STATIC_VARIABLES,
    STATION_FIELDS,
    STATS,
    STATUS,
    TIME_ATTRS,
    AxisGroup,
    Status,
    axis_group,
    field_chunking,
    product_group,
)
from dlens.common.species import MEMBERS, SPECIES, SPECIES_NAMES
from dlens.common.store import open_store

STATUS_ATTRS = {
    "flag_values": [s.value for s in Status],
    "flag_meanings": " ".join(s.name.lower() for s in Status),
}


class StoreMismatchError(ValueError):
    """The store exists with another grid, leads or levels than the ones asked for."""


@dataclass(frozen=True)
class StoreSpec:
    """What a store holds along its fixed axes."""

    domain: Domain
    leads: tuple[int, ...]
    levels: tuple[int, ...]

    def to_attrs(self) -> dict:
        return {"domain": self.domain.to_attrs(), "leads": list(self.leads), "levels": list(self.levels)}

    @classmethod
    def from_attrs(cls, attrs: dict) -> StoreSpec:
        s, n, w, e = attrs["domain"]["bounds_snwe"]
        return cls(
            domain_from_bounds(s, n, w, e, name=attrs["domain"]["name"]),
            tuple(attrs["leads"]),
            tuple(attrs["levels"]),
        )


def _hours(times: Sequence[datetime]) -> np.ndarray:
    return np.array([int(np.datetime64(t, "h").astype(np.int64)) for t in times], dtype=np.int64)


def _compressors() -> list:
    settings = get_settings()
    if settings.compressor == "none":
        return []
    return [
        zarr.codecs.BloscCodec(
            cname=settings.compressor, clevel=settings.compression_level, shuffle="shuffle", typesize=4
        )
    ]


class StoreCoordinator:
    """The single writer of a store's structure, status, statistics and attributes."""

    def __init__(self, url: str, spec: StoreSpec | None = None, read_only: bool = False):
        """Open the store at `url`; create it when `spec` is given and the store does not exist yet.

        Without a spec the store must exist: nothing is created by a command that only reads it.
        """
        self.url = url
        if spec is None or read_only:
            try:
                root = open_store(url, mode="r")
            except (FileNotFoundError, zarr.errors.GroupNotFoundError):
                raise FileNotFoundError(f"no DL-ENS store at {url!r}") from None
            if "schema_version" not in root.attrs:
                raise FileNotFoundError(f"{url!r} is not a DL-ENS store (no schema_version)")
            if not read_only:
                root = open_store(url, mode="r+")
        else:
            root = open_store(url, mode="a")
            if "schema_version" not in root.attrs:
                self._create(root, spec)
        existing = StoreSpec.from_attrs(root.attrs.asdict())
        if spec is not None and spec != existing:
            raise StoreMismatchError(
                f"store {url!r} holds domain {existing.domain.spec()}, leads {list(existing.leads)}, "
                f"levels {list(existing.levels)}; asked for domain {spec.domain.spec()}, "
                f"leads {list(spec.leads)}, levels {list(spec.levels)}"
            )
        self.spec = existing
        self.root = root

    # ----------------------------------------------------------------- creation
    def _create(self, root: zarr.Group, spec: StoreSpec) -> None:
        for path in AXIS_GROUPS:
            self._create_axis_group(root, AXIS_GROUPS[path], spec)
        static = root.require_group(STATIC)
        self._coords(static, STATIC_DIMS, spec)
        nlat, nlon = spec.domain.shape
        for name, units in STATIC_VARIABLES.items():
            static.create_array(
                name, shape=(nlat, nlon), dtype="float32", fill_value=np.nan,
                dimension_names=STATIC_DIMS, compressors=_compressors(), attributes={"units": units},
            )  # fmt: skip
        # The schema version is written last: a store without it is not a store yet.
        root.attrs.update({"grid": "MACCGE01", **spec.to_attrs(), "schema_version": SCHEMA_VERSION})

    def _create_axis_group(self, root: zarr.Group, group: AxisGroup, spec: StoreSpec) -> None:
        g = root.require_group(group.path)
        g.attrs.update({"schema_version": SCHEMA_VERSION, "grid": "MACCGE01", **spec.to_attrs()})
        self._coords(g, group.dims, spec)
        g.create_array(
            group.axis, shape=(0,), dtype="int64", chunks=(AXIS_CHUNK,), fill_value=0,
            dimension_names=(group.axis,), attributes=dict(TIME_ATTRS),
        )  # fmt: skip
        shape = [self._length(d, spec) for d in group.dims]
        nlat, nlon = spec.domain.shape
        leading = tuple(
            1 if d in ("run", "lead", "level", "time") else n for d, n in zip(group.dims, shape[:-2])
        )
        chunking = field_chunking(leading, nlat, nlon)
        for var in group.variables:
            units = SPECIES[var].units if var in SPECIES else METEO_VARIABLES[var]
            g.create_array(
                var, shape=tuple(shape), dtype="float32", chunks=chunking.chunks, shards=chunking.shards,
                fill_value=np.nan, dimension_names=group.dims, compressors=_compressors(),
                attributes={"units": units},
            )  # fmt: skip
        for label in group.status_dims:
            self._label_coord(g, label)
        status_shape = (0, *(len(LABELS[d]) for d in group.status_dims))
        g.create_array(
            STATUS, shape=status_shape, dtype="uint8", chunks=(AXIS_CHUNK, *status_shape[1:]), fill_value=0,
            dimension_names=(group.axis, *group.status_dims),
            attributes=STATUS_ATTRS,
        )  # fmt: skip
        if group.has_stats:
            self._label_coord(g, "stat")
            g.create_array(
                STATS, shape=(0, len(SPECIES_NAMES), len(STAT_NAMES)), dtype="float64",
                chunks=(AXIS_CHUNK, len(SPECIES_NAMES), len(STAT_NAMES)), fill_value=np.nan,
                dimension_names=(group.axis, "species", "stat"),
            )  # fmt: skip

    def _coords(self, g: zarr.Group, dims: Sequence[str], spec: StoreSpec) -> None:
        values = {
            "lead": (np.array(spec.leads, dtype="int32"), {"units": "h", "long_name": "lead time"}),
            "level": (
                np.array(spec.levels, dtype="int32"),
                {"units": "m", "long_name": "height above ground"},
            ),
            "latitude": (spec.domain.latitude, {"units": "degrees_north", "standard_name": "latitude"}),
            "longitude": (spec.domain.longitude, {"units": "degrees_east", "standard_name": "longitude"}),
        }
        for dim in dims:
            if dim in values:
                data, attrs = values[dim]
                g.create_array(dim, data=data, dimension_names=(dim,), attributes=attrs)
            elif dim in LABELS:
                self._label_coord(g, dim)

    @staticmethod
    def _label_coord(g: zarr.Group, dim: str) -> None:
        if dim not in g:
            g.create_array(
                dim, data=np.array(LABELS[dim], dtype=np.dtypes.StringDType()), dimension_names=(dim,)
            )

    @staticmethod
    def _length(dim: str, spec: StoreSpec) -> int:
        lengths = {
            "run": 0, "time": 0, "lead": len(spec.leads), "level": len(spec.levels),
            "member": len(MEMBERS), "latitude": spec.domain.shape[0], "longitude": spec.domain.shape[1],
        }  # fmt: skip
        return lengths[dim]

    # ----------------------------------------------------------------- products
    def products(self) -> list[str]:
        """Names of the products in the store."""
        return sorted(self.root[PRODUCTS].group_keys()) if PRODUCTS in self.root else []

    def ensure_product(self, name: str) -> str:
        """The path of product `name`, creating its group (run axis, status, stats) if needed."""
        group = product_group(name)
        if group.path not in self.root:
            self._create_axis_group(self.root, group, self.spec)
        return group.path

    def ensure_axis_array(
        self, path: str, name: str, dims: tuple[str, ...], attrs: dict | None = None
    ) -> zarr.Array:
        """A float32 array of the group at `path` along its axis and labelled dims (e.g. weights)."""
        g = self.root[path]
        if name not in g:
            for dim in dims[1:]:
                self._label_coord(g, dim)
            shape = (g[axis_group(path).axis].shape[0], *(len(LABELS[d]) for d in dims[1:]))
            g.create_array(
                name, shape=shape, dtype="float32", chunks=(AXIS_CHUNK, *shape[1:]), fill_value=np.nan,
                dimension_names=dims, attributes=attrs or {},
            )  # fmt: skip
        return g[name]

    def ensure_field_array(
        self, path: str, name: str, dims: tuple[str, ...], attrs: dict | None = None
    ) -> zarr.Array:
        """A float32 array of per-cell fields along the group's axis (e.g. fitted coefficients): dims are
        (axis, labelled or lead dims…, level, latitude, longitude), one chunk (or shard) per axis position."""
        g = self.root[path]
        if name not in g:
            for dim in dims[1:-3]:
                if dim in LABELS:
                    self._label_coord(g, dim)
            lengths = {"lead": len(self.spec.leads), **{d: len(v) for d, v in LABELS.items()}}
            middle = tuple(lengths[d] for d in dims[1:-3])
            nlat, nlon = self.spec.domain.shape
            chunking = field_chunking((1, *middle, len(self.spec.levels)), nlat, nlon)
            g.create_array(
                name, shape=(g[axis_group(path).axis].shape[0], *middle, len(self.spec.levels), nlat, nlon),
                dtype="float32", chunks=chunking.chunks, shards=chunking.shards, fill_value=np.nan,
                dimension_names=dims, compressors=_compressors(), attributes=attrs or {},
            )  # fmt: skip
        return g[name]

    # ----------------------------------------------------------------- observations
    def ensure_observations(self, stations: dict[str, np.ndarray], measures: np.ndarray) -> str:
        """The observations group, created with its station network on first use: `stations` holds the
        STATION_FIELDS arrays (one value per station), `measures` (station, species) which species each
        station measures. A store keeps the network it was created with; another one is refused."""
        codes = [str(code) for code in stations["station_code"]]
        if OBSERVATIONS in self.root:
            existing = [str(code) for code in self.root[f"{OBSERVATIONS}/station_code"][:]]
            if existing != codes:
                raise StoreMismatchError(
                    f"store {self.url!r} holds observations of {len(existing)} other stations; "
                    f"asked for {len(codes)} (a store keeps one station network)"
                )
            return OBSERVATIONS
        group = OBSERVATION_GROUP
        g = self.root.require_group(OBSERVATIONS)
        g.attrs.update({"schema_version": SCHEMA_VERSION, "grid": "MACCGE01", **self.spec.to_attrs()})
        g.create_array(
            group.axis, shape=(0,), dtype="int64", chunks=(AXIS_CHUNK,), fill_value=0,
            dimension_names=(group.axis,), attributes=dict(TIME_ATTRS),
        )  # fmt: skip
        n = len(codes)
        g.create_array("station", data=np.arange(n, dtype="int32"), dimension_names=("station",))
        for name, dtype in STATION_FIELDS.items():
            values = np.asarray(stations[name])
            data = values.astype(np.dtypes.StringDType()) if dtype == "str" else values.astype(dtype)
            g.create_array(name, data=data, dimension_names=("station",))
        self._label_coord(g, "species")
        g.create_array(
            "measures", data=np.asarray(measures, dtype="uint8"), dimension_names=("station", "species"),
            attributes={"long_name": "1 where the station measures the species"},
        )  # fmt: skip
        for var in group.variables:
            g.create_array(
                var, shape=(0, n), dtype="float32", chunks=(1, max(n, 1)), fill_value=np.nan,
                dimension_names=group.dims, compressors=_compressors(),
                attributes={"units": SPECIES[var].units},
            )  # fmt: skip
        g.create_array(
            STATUS, shape=(0, len(SPECIES_NAMES)), dtype="uint8", chunks=(AXIS_CHUNK, len(SPECIES_NAMES)),
            fill_value=0, dimension_names=(group.axis, "species"), attributes=STATUS_ATTRS,
        )  # fmt: skip
        return OBSERVATIONS

    # ----------------------------------------------------------------- axes
    def axis_values(self, path: str) -> np.ndarray:
        """The committed labels of a group's run/time axis, as datetime64[h]."""
        coord = self.root[f"{path}/{axis_group(path).axis}"][:]
        return committed_labels(coord)

    def ensure_axis(self, path: str, times: Sequence[datetime]) -> list[int]:
        """Positions of `times` on the group's axis, appending the ones it lacks (coordinator only)."""
        group = axis_group(path)
        current = self.axis_values(path)
        index = {int(v): i for i, v in enumerate(current.astype(np.int64))}
        wanted = _hours(times)
        new = [h for h in dict.fromkeys(wanted.tolist()) if h not in index]
        size = len(current) + len(new)
        g = self.root[path]
        for key, arr in g.arrays():  # data, status, stats and any extra array along the axis
            along_axis = key != group.axis and arr.metadata.dimension_names[0] == group.axis
            if along_axis and arr.shape[0] != size:
                arr.resize((size, *arr.shape[1:]))
        coord = g[group.axis]
        if new:
            coord.resize((size,))
            coord[len(current) :] = np.array(new, dtype=np.int64)
            index.update({h: len(current) + k for k, h in enumerate(new)})
        return [index[h] for h in wanted.tolist()]

    # ----------------------------------------------------------------- status and stats
    def status(self, path: str) -> np.ndarray:
        """The status array of a group, trimmed to the committed axis."""
        n = len(self.axis_values(path))
        return self.root[f"{path}/{STATUS}"][:n]

    def mark(
        self, path: str, positions: int | Sequence[int], status: np.ndarray | int, label_index: tuple = ()
    ) -> None:
        """Commit the status of axis positions (optionally a sub-slice of their label dims), in one write."""
        arr = self.root[f"{path}/{STATUS}"]
        if isinstance(positions, int):
            arr[(positions, *label_index)] = status
        else:
            arr.oindex[(np.asarray(positions), *label_index)] = status

    def write_stats(self, path: str, positions: int | Sequence[int], species: str, stats: np.ndarray) -> None:
        """Store the additive statistics of one species at axis positions (rows of `stats`)."""
        arr = self.root[f"{path}/{STATS}"]
        k = SPECIES_NAMES.index(species)
        if isinstance(positions, int):
            arr[positions, k] = stats
        else:
            arr.oindex[np.asarray(positions), k] = np.asarray(stats)

    def write_static(self, fields: dict[str, np.ndarray]) -> None:
        for name, data in fields.items():
            self.root[f"{STATIC}/{name}"][:] = data.astype("float32")

    def update_attrs(self, path: str, **attrs: object) -> None:
        target = self.root[path] if path else self.root
        target.attrs.update(attrs)

    def refresh_normalisation(self) -> None:
        """Recompute per-species normalisation attrs from the stats rows of committed cells."""
        for path, group in AXIS_GROUPS.items():
            if not group.has_stats:
                continue
            status = self.status(path)
            stats = self.root[f"{path}/{STATS}"][: len(status)]
            self.root[path].attrs["normalisation"] = normalisation(stats, status, group)


def normalisation(stats: np.ndarray, status: np.ndarray, group: AxisGroup) -> dict[str, dict[str, float]]:
    """Per-species statistics (summarise_stats) over the axis positions of `stats` (position, species, stat)
    whose cells of that species are all committed, by `status` (position, *group.status_dims)."""
    species_axis = group.status_dims.index("species") + 1
    committed = np.all(
        status != Status.PENDING, axis=tuple(i for i in range(1, status.ndim) if i != species_axis)
    )
    norm = {}
    for k, sp in enumerate(SPECIES_NAMES):
        rows = stats[committed[:, k], k] if status.size else np.empty((0, len(STAT_NAMES)))
        rows = rows[np.isfinite(rows[:, 0]) & (rows[:, 0] > 0)]
        if rows.size:
            norm[sp] = summarise_stats(rows)
    return norm


def committed_labels(coord: np.ndarray) -> np.ndarray:
    """Axis labels (hours since 1970) as datetime64[h], cut at the first unwritten (0) entry.

    An axis grown by a coordinator that crashed before writing its labels ends in zeros.
    """
    unwritten = np.flatnonzero(coord == 0)
    return (coord[: unwritten[0]] if unwritten.size else coord).astype("datetime64[h]")


def field_stats(data: np.ndarray) -> np.ndarray:
    """Additive statistics (STAT_NAMES order) of the finite values of `data`."""
    x = data[np.isfinite(data)].astype(np.float64)
    if x.size == 0:
        return np.array([0, 0, 0, 0, 0, np.nan, np.nan])
    lx = np.log1p(np.maximum(x, 0))
    return np.array([x.size, x.sum(), (x * x).sum(), lx.sum(), (lx * lx).sum(), x.min(), x.max()])


def merge_stats(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Combine two STAT_NAMES vectors."""
    out = a[:5] + b[:5]
    return np.concatenate([out, [np.fmin(a[5], b[5]), np.fmax(a[6], b[6])]])


def summarise_stats(rows: np.ndarray) -> dict[str, float]:
    """Mean, std, log1p mean/std, min, max from rows of additive statistics."""
    n, s, ss, ls, lss = rows[:, :5].sum(axis=0)
    mean, lmean = s / n, ls / n
    return {
        "n": int(n),
        "mean": float(mean),
        "std": float(np.sqrt(max(ss / n - mean**2, 0.0))),
        "log1p_mean": float(lmean),
        "log1p_std": float(np.sqrt(max(lss / n - lmean**2, 0.0))),
        "min": float(np.nanmin(rows[:, 5])),
        "max": float(np.nanmax(rows[:, 6])),
    }


class FieldWriter:
    """Worker-side access to a store's data variables, each array opened once per worker task."""

    def __init__(self, url: str):
        self.root = open_store(url, mode="r+")
        self._arrays: dict[str, zarr.Array] = {}

    def array(self, path: str, variable: str) -> zarr.Array:
        key = f"{path}/{variable}"
        if key not in self._arrays:
            self._arrays[key] = self.root[key]
        return self._arrays[key]

    def write(self, path: str, variable: str, index: tuple | slice, data: np.ndarray) -> None:
        """Write one region (whole shards) of a data variable."""
        self.array(path, variable)[index] = data.astype("float32", copy=False)


def contiguous_blocks(positions: Sequence[int], max_len: int) -> list[tuple[int, int]]:
    """Split positions into (first index into `positions`, length) runs of consecutive values."""
    blocks: list[tuple[int, int]] = []
    start = 0
    for k in range(1, len(positions) + 1):
        if k == len(positions) or positions[k] != positions[k - 1] + 1 or k - start == max_len:
            blocks.append((start, k - start))
            start = k
    return blocks


def fields_per_write(field_bytes: int, budget_bytes: int = 16 * 1024**2) -> int:
    """How many fields of this size one write may hold within a worker's memory budget."""
    return max(1, budget_bytes // max(field_bytes, 1))
