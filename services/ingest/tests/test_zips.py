"""Zip bombs and unsafe entries: the archive is refused whole, with one line naming it and the limit,
before anything is extracted or written to the store."""

from __future__ import annotations

import stat
import struct
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import cams_files as F

from dlens.ingest.cli import main
from dlens.ingest.readers import inspect_files
from dlens.ingest.readers.zips import MAX_ZIP_BYTES, MAX_ZIP_ENTRIES, MAX_ZIP_RATIO


def _archive(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    """A zip of `entries` beside a valid member forecast (which must not be extracted either)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(F.write_ads(path.with_suffix(".nc")), "chimere.nc")
        for info, data in entries:
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    path.with_suffix(".nc").unlink()
    return path


def ratio_bomb(path: Path) -> Path:
    """16 MiB of zeros deflated to a few kB."""
    return _archive(path, [("emep.nc", bytes(16 * 1024**2))])


DECLARED = 0xFFFFFFFE  # the largest size a zip declares without zip64 extras
PARTS = MAX_ZIP_BYTES // DECLARED + 1


def declares_too_much(path: Path) -> Path:
    """One-byte stored entries whose central directory declares 4 GiB each, more than MAX_ZIP_BYTES in all."""
    with zipfile.ZipFile(path, "w") as zf:
        for k in range(PARTS):
            zf.writestr(f"part{k}.nc", b"x")
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    while at != -1:  # compressed and uncompressed sizes of each central-directory header
        data[at + 20 : at + 28] = struct.pack("<II", DECLARED, DECLARED)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))
    return path


def many_entries(path: Path) -> Path:
    return _archive(path, [(f"part{k}.txt", b"") for k in range(MAX_ZIP_ENTRIES)])


def symlink(path: Path) -> Path:
    link = zipfile.ZipInfo("emep.nc")
    link.create_system = 3  # Unix: the mode in the high bits of external_attr
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _archive(path, [(link, b"/etc/passwd")])


def escaping(path: Path) -> Path:
    return _archive(path, [("../../emep.nc", b"x")])


def absolute(path: Path) -> Path:
    return _archive(path, [("/tmp/emep.nc", b"x")])


CASES = {
    "ratio": (
        ratio_bomb,
        "'emep.nc' expands",
        f"to 16,777,216 bytes, over the limit of {MAX_ZIP_RATIO}-fold",
    ),
    "size": (
        declares_too_much,
        f"expands to {PARTS * DECLARED:,} bytes, over the limit of {MAX_ZIP_BYTES:,}",
    ),
    "entries": (many_entries, f"{MAX_ZIP_ENTRIES + 1:,} entries", f"over the limit of {MAX_ZIP_ENTRIES:,}"),
    "symlink": (symlink, "'emep.nc' is a symbolic link"),
    "escaping": (escaping, "'../../emep.nc' leads outside the archive's directory"),
    "absolute": (absolute, "'/tmp/emep.nc' leads outside the archive's directory"),
}


@pytest.mark.parametrize("case", CASES)
def test_unsafe_zip_refused_before_anything_is_extracted(tmp_path, case):
    make, *fragments = CASES[case]
    archive = make(tmp_path / f"{case}.zip")
    work = tmp_path / "work"
    good, bad = inspect_files([archive], work)
    assert good == [] and len(bad) == 1, [str(e) for e in bad]
    message = str(bad[0])
    assert message.startswith(f"{archive.name}: zip refused: ") and "\n" not in message, message
    assert all(fragment in message for fragment in fragments), message
    assert list(work.iterdir()) == []


def test_unsafe_zips_leave_no_store_behind(tmp_path, ray_cluster, capsys):
    archives = [make(tmp_path / f"{case}.zip") for case, (make, *_) in CASES.items()]
    store = tmp_path / "store.zarr"
    assert main(["--no-progress", "files", "--store", str(store), *map(str, archives)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == len(archives), errors
    for archive in archives:
        assert any(line.startswith(f"error: {archive.name}: zip refused: ") for line in errors), errors
    assert not store.exists()
