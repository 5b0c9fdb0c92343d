"""`validate_store`: check a store against the layout of DESIGN §3 and say precisely what is wrong."""

from __future__ import annotations

import numpy as np
import xarray as xr

from dlens.common.grid import domain_of
from dlens.common.layout import (
    AXIS_GROUPS,
    OBSERVATION_GROUP,
    OBSERVATIONS,
    PRODUCTS,
    SCHEMA_HISTORY,
    SCHEMA_VERSION,
    STATIC,
    STATIC_DIMS,
    STATIC_VARIABLES,
    STATUS,
    Status,
    axis_group,
)
from dlens.common.species import MEMBERS
from dlens.common.store import open_dataset, open_store

#: (variables, dims) of every group, from the layout the writer builds the store with.
EXPECTED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    **{path: (g.variables, g.dims) for path, g in AXIS_GROUPS.items()},
    STATIC: (tuple(STATIC_VARIABLES), STATIC_DIMS),
}


class StoreInvalidError(ValueError):
    """The store does not follow the schema; the message lists every problem."""


def validate_store(url: str, deep: bool = False) -> list[str]:
    """Problems found in the store at `url` (empty when it is valid).

    The shallow check reads metadata and coordinates; `deep` also reads every committed cell and
    checks that complete cells hold finite, non-negative values and absent ones only NaN.
    """
    try:
        root = open_store(url, mode="r")
    except (FileNotFoundError, ValueError) as exc:
        return [f"cannot open store: {exc}"]
    attrs = root.attrs.asdict()
    version = attrs.get("schema_version")
    if version != SCHEMA_VERSION:
        return [_version_problem(version)]
    problems: list[str] = []
    expected = dict(EXPECTED)
    if OBSERVATIONS in root:
        expected[OBSERVATIONS] = (OBSERVATION_GROUP.variables, OBSERVATION_GROUP.dims)
    if PRODUCTS in root:  # products written by evaluate and train follow the same product layout
        for name in sorted(root[PRODUCTS].group_keys()):
            group = axis_group(f"{PRODUCTS}/{name}")
            expected.setdefault(group.path, (group.variables, group.dims))
    for path, (variables, dims) in expected.items():
        try:
            ds = open_dataset(url, path)
        except Exception as exc:  # a missing or unreadable group is a finding, not a crash
            problems.append(f"{path}: cannot open group ({type(exc).__name__}: {exc})")
            continue
        problems += _check_group(path, ds, variables, dims, attrs)
        if deep and STATUS in ds:
            problems += _check_committed(path, ds, variables)
    return problems


def _version_problem(version: object) -> str:
    """What a store of another schema version is, and what to do about it."""
    if isinstance(version, int) and version < SCHEMA_VERSION:
        newer = "; ".join(f"version {v}: {SCHEMA_HISTORY[v]}" for v in range(version + 1, SCHEMA_VERSION + 1))
        return (
            f"root: schema_version is {version}, expected {SCHEMA_VERSION}: the store was made by an older "
            f"DL-ENS ({SCHEMA_HISTORY.get(version, 'unknown layout')}); since then {newer}. Ingest again "
            "into a new store (dlens-ingest synthetic or files) to use it"
        )
    return f"root: schema_version is {version!r}, expected {SCHEMA_VERSION}"


def check_store(url: str, deep: bool = False) -> None:
    """Raise StoreInvalidError listing every problem, if any."""
    problems = validate_store(url, deep=deep)
    if problems:
        raise StoreInvalidError(f"store {url!r} is invalid:\n  " + "\n  ".join(problems))


def _check_group(path: str, ds: xr.Dataset, variables, dims, root_attrs: dict) -> list[str]:
    problems = []
    for var in variables:
        if var not in ds:
            problems.append(f"{path}: variable {var!r} is missing")
        elif ds[var].dims != dims:
            problems.append(f"{path}/{var}: dims {ds[var].dims}, expected {dims}")
        elif ds[var].dtype != np.float32:
            problems.append(f"{path}/{var}: dtype {ds[var].dtype}, expected float32")
    if "latitude" in dims:
        problems += _check_grid(path, ds, root_attrs)
    if "lead" in dims and list(ds["lead"].values) != list(root_attrs["leads"]):
        problems.append(
            f"{path}: leads {list(ds['lead'].values)} differ from the store's {root_attrs['leads']}"
        )
    if "member" in dims and tuple(ds["member"].values) != MEMBERS:
        problems.append(f"{path}: members {tuple(ds['member'].values)}, expected {MEMBERS}")
    for axis in ("run", "time"):
        if axis in dims:
            values = ds[axis].values
            if not np.issubdtype(values.dtype, np.datetime64):
                problems.append(f"{path}: {axis} is not a datetime coordinate")
            elif len(np.unique(values)) != len(values):
                problems.append(f"{path}: {axis} has duplicated values")
            if STATUS not in ds:
                problems.append(f"{path}: {STATUS} array is missing")
            elif ds[STATUS].sizes[axis] != ds.sizes[axis]:
                problems.append(
                    f"{path}: {STATUS} has {ds[STATUS].sizes[axis]} {axis}s, coordinate has {ds.sizes[axis]}"
                )
            elif not np.isin(ds[STATUS].values, [s.value for s in Status]).all():
                problems.append(f"{path}: {STATUS} holds values outside {[s.value for s in Status]}")
    return problems


def _check_grid(path: str, ds: xr.Dataset, root_attrs: dict) -> list[str]:
    try:
        dom = domain_of(ds["latitude"].values, ds["longitude"].values)
    except (KeyError, ValueError) as exc:
        return [f"{path}: latitude/longitude are not ascending MACCGE01 cells ({exc})"]
    if list(dom.bounds) != list(root_attrs["domain"]["bounds_snwe"]):
        return [f"{path}: grid {dom.spec()} differs from the store's {root_attrs['domain']['bounds_snwe']}"]
    return []


def _check_committed(path: str, ds: xr.Dataset, variables, budget_bytes: int = 64 * 1024**2) -> list[str]:
    """Deep check: committed cells hold what their status says, reading blocks of axis positions."""
    problems = []
    status = ds[STATUS]
    axis = status.dims[0]
    group = axis_group(path)
    label_dim = group.status_dims[-1]  # species or variable
    missing = "no value" if group.gaps else "NaN"
    for var in (v for v in variables if v in ds):
        cells = status.sel({label_dim: var})  # dims: (axis,) or (axis, member)
        data = ds[var].transpose(*cells.dims, ...)
        per_position = data.isel({axis: 0}).size * 4 if data.sizes[axis] else 1
        step = max(1, budget_bytes // per_position)
        codes = cells.values
        for first in range(0, len(codes), step):
            code = codes[first : first + step]
            if (code == Status.PENDING).all():
                continue
            block = data.isel({axis: slice(first, first + step)}).values
            flat = block.reshape(*block.shape[: cells.ndim], -1)
            nan = np.isnan(flat).all(axis=-1)
            finite = ~nan if group.gaps else np.isfinite(flat).all(axis=-1)
            negative = (np.nan_to_num(flat, nan=0.0) < 0).any(axis=-1) & (var not in ("u10", "v10"))
            for idx in zip(*np.nonzero((code == Status.COMPLETE) & ~finite)):
                label = _label(cells, first, idx)
                problems.append(f"{path}/{var} [{label}]: marked complete but holds {missing}")
            for idx in zip(*np.nonzero((code == Status.COMPLETE) & finite & negative)):
                problems.append(
                    f"{path}/{var} [{_label(cells, first, idx)}]: marked complete but holds negative values"
                )
            for idx in zip(*np.nonzero((code == Status.ABSENT) & ~nan)):
                problems.append(f"{path}/{var} [{_label(cells, first, idx)}]: marked absent but holds values")
    return problems


def _label(cells: xr.DataArray, first: int, idx: tuple) -> str:
    """`run=…, member=…` for the cell at `idx` of a block starting at axis position `first`."""
    idx = (first + int(idx[0]), *map(int, idx[1:]))
    return ", ".join(f"{d}={cells[d].values[i]}" for d, i in zip(cells.dims, idx))
