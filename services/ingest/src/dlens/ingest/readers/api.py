"""The two entry points the store writer calls: `inspect_files` and `open_normalised`."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import xarray as xr

from . import detect, grib, netcdf
from .errors import IngestError, Problem, one_line
from .layout import Layout
from .model import CamsFile
from .validate import check_values
from .zips import expand, is_zip


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _layout(path: Path, source: str) -> Layout:
    fmt = netcdf.sniff(path)
    if fmt == "netcdf":
        return detect.describe(netcdf.open_raw(path))
    if fmt == "grib":
        return grib.describe(path, source)
    if path.stat().st_size == 0:
        raise Problem("empty file (0 bytes)")
    raise Problem("not a NetCDF or GRIB file")


def _close(layout: Layout) -> None:
    for src in layout.species.values():
        src.raw.close()


def _inspect_one(path: Path, source: str) -> CamsFile:
    try:
        layout = _layout(path, source)
        try:
            check_values(layout)
        finally:
            _close(layout)
    except Problem as exc:
        raise IngestError(source, str(exc)) from None
    except Exception as exc:  # never a traceback for a bad file
        raise IngestError(source, f"unreadable file ({type(exc).__name__}: {one_line(exc, 150)})") from None
    return CamsFile(
        path=path,
        source=source,
        sha256=sha256_of(path),
        kind=layout.kind,  # type: ignore[arg-type]
        member=layout.member,
        species=tuple(layout.species),
        run=layout.run.to_pydatetime() if layout.run is not None else None,
        leads=tuple(int(v) for v in layout.leads),
        times=tuple(pd.Timestamp(t).to_pydatetime() for t in layout.times),
        levels=tuple(int(v) for v in layout.levels),
        latitude=layout.latitude.copy(),
        longitude=layout.longitude.copy(),
        target={"forecast": None, "analysis": "analysis"}.get(layout.kind, layout.stream),  # type: ignore[arg-type]
    )


def inspect_files(paths: Sequence[Path], workdir: Path) -> tuple[list[CamsFile], list[IngestError]]:
    """Expand zips into `workdir`, detect and fully validate every file. Bad files come back as errors;
    nothing is raised for them."""
    good: list[CamsFile] = []
    bad: list[IngestError] = []
    workdir = Path(workdir)
    for p in map(Path, paths):
        if not p.is_file():
            bad.append(IngestError(p.name or str(p), "no such file"))
            continue
        try:
            if is_zip(p):
                workdir.mkdir(parents=True, exist_ok=True)
                members, errors = expand(p, workdir)
                bad.extend(errors)
            else:
                members = [(p, str(p))]
        except OSError as exc:
            bad.append(IngestError(p.name, f"cannot read: {one_line(exc, 100)}"))
            continue
        for path, source in members:
            try:
                good.append(_inspect_one(path, source))
            except IngestError as exc:
                if source == str(p):  # plain file: name it by its file name
                    exc = IngestError(p.name, exc.problem)
                bad.append(exc)
    return good, bad


def open_normalised(cf: CamsFile) -> xr.Dataset:
    """The lazy normalised dataset of an inspected file (float32 µg/m3, store orientation and names)."""
    try:
        layout = _layout(cf.path, cf.source)
    except Problem as exc:
        raise IngestError(cf.source, str(exc)) from None
    attrs = {"kind": cf.kind, "member": cf.member or "", "source_file": cf.source, "sha256": cf.sha256}
    if cf.run is not None:
        attrs["run"] = cf.run.isoformat()
    return layout.dataset(clip=True, attrs=attrs)
