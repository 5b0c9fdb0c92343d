"""Expand zip archives (ADS ``netcdf_zip`` downloads) into a work directory.

The central directory is checked before anything is extracted; an archive over one of these limits, or
with a symbolic link or a name leading out of the work directory, is refused whole. The declared sizes
bound what extraction writes: zipfile stops reading an entry at its declared size.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath

from .errors import IngestError, one_line
from .netcdf import sniff

_DATA_SUFFIXES = (".nc", ".nc4", ".netcdf", ".grib", ".grib2", ".grb", ".grb2")

#: The most bytes an archive may expand to (its entries' declared sizes summed): about 12 days of
#: full-grid ADS forecasts at one level (11 members and the ENSEMBLE, 4 species, 97 leads).
MAX_ZIP_BYTES = 64 * 1024**3
#: The most entries an archive may hold (an ADS zip holds one file per model).
MAX_ZIP_ENTRIES = 10_000
#: The most an entry larger than RATIO_CHECKED_ABOVE may expand over its compressed size (NetCDF and
#: GRIB deflate a few-fold; a run of zeros a thousand-fold).
MAX_ZIP_RATIO = 100
RATIO_CHECKED_ABOVE = 1024**2


def is_zip(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


def unsafe(entries: list[zipfile.ZipInfo]) -> str | None:
    """Why a zip with these central-directory entries must not be extracted, or None when it may be."""
    if len(entries) > MAX_ZIP_ENTRIES:
        return f"zip refused: {len(entries):,} entries, over the limit of {MAX_ZIP_ENTRIES:,}"
    total = sum(entry.file_size for entry in entries)
    if total > MAX_ZIP_BYTES:
        return f"zip refused: expands to {total:,} bytes, over the limit of {MAX_ZIP_BYTES:,}"
    for entry in entries:
        name = PurePosixPath(entry.filename.replace("\\", "/"))
        if name.is_absolute() or ".." in name.parts:
            return f"zip refused: entry {entry.filename!r} leads outside the archive's directory"
        if stat.S_ISLNK(entry.external_attr >> 16):
            return f"zip refused: entry {entry.filename!r} is a symbolic link"
        ratio = entry.file_size / max(entry.compress_size, 1)
        if entry.file_size > RATIO_CHECKED_ABOVE and ratio > MAX_ZIP_RATIO:
            return (
                f"zip refused: entry {entry.filename!r} expands {ratio:,.0f}-fold to {entry.file_size:,} "
                f"bytes, over the limit of {MAX_ZIP_RATIO}-fold"
            )
    return None


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
        if problem := unsafe(zf.infolist()):
            return [], [IngestError(name, problem)]
        members = [i for i in zf.infolist() if not i.is_dir()]
        if not members:
            return [], [IngestError(name, "empty zip archive (no files)")]
        for i, info in enumerate(members):
            member = PurePosixPath(info.filename)
            if member.name.startswith(".") or "__MACOSX" in member.parts:
                continue
            source = f"{name}:{info.filename}"
            # keep the member's directory names (PMACC<MODEL>/...); `unsafe` refused any leading out of `dest`
            parts = [re.sub(r"[^A-Za-z0-9_.-]", "_", p) for p in member.parts]
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
