"""Expand zip archives (ADS ``netcdf_zip`` downloads) into a work directory."""

from __future__ import annotations

import hashlib
import re
import shutil
import zipfile
from pathlib import Path, PurePosixPath

from .errors import IngestError, one_line
from .netcdf import sniff

_DATA_SUFFIXES = (".nc", ".nc4", ".netcdf", ".grib", ".grib2", ".grb", ".grb2")


def is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def expand(path: Path, workdir: Path) -> tuple[list[tuple[Path, str]], list[IngestError]]:
    """(extracted data files as (path, "zip:member"), errors). Members that are neither NetCDF nor GRIB and
    not named like data files (a README, say) are skipped; a zip without any data file is an error."""
    name = path.name
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return [], [IngestError(name, f"not a valid zip archive: {one_line(exc, 80)}")]
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    dest = workdir / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', path.stem)}-{digest}"
    files: list[tuple[Path, str]] = []
    errors: list[IngestError] = []
    skipped: list[str] = []
    with zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
        if not members:
            return [], [IngestError(name, "empty zip archive (no files)")]
        for i, info in enumerate(members):
            member = PurePosixPath(info.filename)
            if member.name.startswith(".") or "__MACOSX" in member.parts:
                continue
            source = f"{name}:{info.filename}"
            # keep the member's directory names (PMACC<MODEL>/...) but never leave `dest`
            parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in member.parts if p not in ("", ".", "..")]
            target = dest / f"{i:04d}" / Path(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
            except Exception as exc:
                errors.append(IngestError(source, f"cannot extract from the zip: {one_line(exc, 80)}"))
                continue
            if sniff(target) is None and not member.name.lower().endswith(_DATA_SUFFIXES):
                skipped.append(member.name)
                target.unlink()
                continue
            files.append((target, source))
    if not files and not errors:
        found = ", ".join(skipped[:5]) or "nothing"
        errors.append(IngestError(name, f"zip holds no NetCDF or GRIB file (found {found})"))
    return files, errors
