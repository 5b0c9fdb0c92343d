"""Opening the shared Zarr store: a local directory or an ``s3://bucket/prefix`` URL.

S3 endpoint and credentials come from the standard AWS environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``) or from
``DLENS_S3_ENDPOINT_URL``; they are never logged. fsspec/s3fs objects are not fork-safe: call these
functions inside each process that needs the store (DataLoader workers, Ray tasks), never pass
an opened store across processes.

Every S3 request is bounded (`S3Bounds`: the settings' `DLENS_S3_TIMEOUT_S` and `DLENS_S3_ATTEMPTS`, or a
process's own, `bound_s3_requests`), botocore's standard retries being the only ones, so an endpoint that is
down fails a command in seconds, never minutes; `unreachable` turns such a failure into one line.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import fsspec
import s3fs
import xarray as xr
import zarr
from botocore import exceptions as boto
from botocore.exceptions import BotoCoreError
from zarr.storage import FsspecStore, LocalStore

from dlens.common.config import get_settings

AccessMode = Literal["r", "r+", "a", "w"]

#: S3 error codes of a conditional PUT that lost: the object exists, or another conditional PUT of it
#: is in flight.
_CONDITION_FAILED = ("PreconditionFailed", "ConditionalRequestConflict")


@dataclass(frozen=True)
class S3Bounds:
    """How long one S3 request may take: seconds to connect and between bytes read, and attempts in all."""

    timeout_s: float
    attempts: int


#: This process's bounds on S3 requests (`bound_s3_requests`); None: the settings' (`s3_timeout_s`,
#: `s3_attempts`). Without bounds s3fs and botocore wait 5 s to connect, 15 s between reads, 5 attempts by
#: botocore, each read timeout retried 5 times by s3fs: minutes on an endpoint that stopped answering.
_bounds: S3Bounds | None = None


class StoreUnreachableError(OSError):
    """The S3 endpoint refused, dropped or let time out a request, all its attempts."""


def bound_s3_requests(bounds: S3Bounds | None) -> None:
    """Bound every S3 request this process makes from now on, instead of the settings (None: the settings
    again): a server that must answer while S3 stalls (`dlens.serve`) fails a request in about
    `attempts` × `timeout_s`."""
    global _bounds
    _bounds = bounds


def is_outage(exc: BaseException) -> bool:
    """Whether a store read failed because the store did not answer (refused, timed out, dropped, an S3
    error status), not because what it read is not there (FileNotFoundError)."""
    return isinstance(exc, OSError | BotoCoreError) and not isinstance(exc, FileNotFoundError)


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def s3_endpoint() -> str | None:
    """The configured S3 endpoint URL (None: AWS's own)."""
    return get_settings().s3_endpoint_url or os.environ.get("AWS_ENDPOINT_URL")


def s3_storage_options() -> dict:
    """fsspec options for s3fs built from the environment and settings (credentials stay in env), with this
    process's bounds on each request (`bound_s3_requests`, else the settings')."""
    settings = get_settings()
    bounds = _bounds or S3Bounds(settings.s3_timeout_s, settings.s3_attempts)
    options: dict = {}
    if endpoint := s3_endpoint():
        options["client_kwargs"] = {"endpoint_url": endpoint}
    options["config_kwargs"] = {
        "connect_timeout": bounds.timeout_s, "read_timeout": bounds.timeout_s,
        "retries": {"total_max_attempts": bounds.attempts, "mode": "standard"},
    }  # fmt: skip
    return options


def _s3(asynchronous: bool) -> s3fs.S3FileSystem:
    """The S3 filesystem of `s3_storage_options`; botocore's attempts are all (s3fs would retry each timed-out
    attempt 5 times more, 25 for a read)."""
    options = s3_storage_options() | {"asynchronous": asynchronous}
    fs = s3fs.S3FileSystem(**options)
    fs.retries = 1
    return fs


def error_line(exc: BaseException) -> str:
    """The one line a command prints for `exc`: the store's unreachability when that is what it is."""
    return str(unreachable(exc) or exc).strip().splitlines()[0]


def unreachable(exc: BaseException) -> StoreUnreachableError | None:
    """`exc` as a StoreUnreachableError when it, or an exception it arose from, is a failure to reach the
    S3 endpoint (connection refused or dropped, a connect or read timeout); None otherwise. Of several
    (a lock not given back after a failed write), the first one raised is named."""
    chain: list[BaseException] = []
    error: BaseException | None = exc
    while error is not None and all(error is not seen for seen in chain):
        chain.append(error)
        error = error.__cause__ or error.__context__
    if lost := [e for e in chain if isinstance(e, StoreUnreachableError)]:
        return lost[-1]
    network = [e for e in chain if isinstance(e, boto.ConnectionError | boto.HTTPClientError)]
    if not network:
        return None
    endpoint = urlsplit(s3_endpoint() or "https://s3.amazonaws.com")
    shown = endpoint._replace(netloc=endpoint.netloc.rpartition("@")[2]).geturl()  # never a password
    detail = str(network[-1]).strip().splitlines()[0]
    return StoreUnreachableError(
        f"store unreachable: {shown}: {detail}; what was committed stays committed: run the same command "
        "again once the endpoint answers"
    )


def absolute_url(url: str) -> str:
    """`url` with a local path made absolute, so that processes started in another directory (Ray Train
    workers, Tune trials) open the same store; s3:// and other URLs are returned unchanged."""
    if "://" in url and not url.startswith("file://"):
        return url
    return str(Path(url.removeprefix("file://")).expanduser().resolve())


def zarr_store(url: str, read_only: bool = False) -> zarr.abc.store.Store:
    """The zarr store object behind `url` (local path or s3:// URL)."""
    if is_s3(url):
        return FsspecStore(
            _s3(asynchronous=True), path=url.removeprefix("s3://").rstrip("/"), read_only=read_only
        )
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"store {url!r}: expected a local path or an s3://bucket/prefix URL")
    path = Path(url.removeprefix("file://")).expanduser()
    if read_only and not path.exists():
        raise FileNotFoundError(f"store {url!r} does not exist")
    return LocalStore(path, read_only=read_only)


def open_store(url: str | None = None, mode: AccessMode = "r") -> zarr.Group:
    """Open the root group of the store at `url` (default: the configured store)."""
    url = url or get_settings().store
    return zarr.open_group(zarr_store(url, read_only=mode == "r"), mode=mode, zarr_format=3)


def open_dataset(url: str | None, group: str) -> xr.Dataset:
    """Lazy xarray view of one group of the store (e.g. ``forecasts``, ``analysis``)."""
    url = url or get_settings().store
    return xr.open_zarr(
        zarr_store(url, read_only=True), group=group, consolidated=False, zarr_format=3, chunks=None
    )


def put_directory(local: Path, url: str, key: str) -> str:
    """Copy a local directory to `key` under the store root (reports, figures); return its location."""
    fs, root = _filesystem(url)
    if is_s3(url):
        target = f"{root}/{key}"
        fs.put(str(local), target, recursive=True)
        return f"s3://{target}"
    target = Path(root) / key
    shutil.copytree(local, target, dirs_exist_ok=True)
    return str(target)


def _filesystem(url: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, root path) of the store, for the plain files beside the Zarr nodes."""
    if is_s3(url):
        return _s3(asynchronous=False), url.removeprefix("s3://").rstrip("/")
    return fsspec.filesystem("file"), str(Path(url.removeprefix("file://")).expanduser())


def list_directory(url: str, key: str) -> list[str]:
    """Names of the entries under `key` in the store (empty when it does not exist)."""
    fs, root = _filesystem(url)
    path = f"{root}/{key}"
    if not fs.exists(path):
        return []
    return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False))


def write_file(url: str, key: str, data: bytes) -> None:
    """Write a plain file under the store root (a README beside the groups, a registry entry's files).
    A reader sees the whole file or none: an S3 object appears when its upload completes, a local file
    is written beside its place and renamed; local parent directories are created."""
    fs, root = _filesystem(url)
    if is_s3(url):
        with fs.open(f"{root}/{key}", "wb") as f:
            f.write(data)
        return
    target = Path(root) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.part")
    part.write_bytes(data)
    part.replace(target)


def read_file(url: str, key: str) -> bytes:
    """The bytes of a plain file under the store root; FileNotFoundError when it is missing."""
    fs, root = _filesystem(url)
    return fs.cat_file(f"{root}/{key}")  # one GET on S3, never a cached listing


def create_file(url: str, key: str, data: bytes) -> bool:
    """Write a plain file under the store root only if none is there; False when one is.

    Atomic, so of two callers exactly one creates it: on S3 a PUT with ``If-None-Match: *`` (AWS S3,
    MinIO), locally a hard link from a complete temporary file (link(2) fails on an existing name, and
    the file appears whole). Local parent directories are created."""
    fs, root = _filesystem(url)
    if is_s3(url):
        try:
            fs.pipe_file(f"{root}/{key}", data, mode="create")
        except OSError as exc:
            error = getattr(exc.__cause__, "response", {}).get("Error", {})
            if isinstance(exc, FileExistsError) or error.get("Code") in _CONDITION_FAILED:
                return False
            raise
        return True
    target = Path(root) / key
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
    part.write_bytes(data)
    try:
        os.link(part, target)
    except FileExistsError:
        return False
    finally:
        part.unlink()
    return True


def delete_file(url: str, key: str) -> None:
    """Remove a plain file under the store root (nothing happens when it is missing)."""
    fs, root = _filesystem(url)
    if is_s3(url):
        fs.rm_file(f"{root}/{key}")
    else:
        Path(root, key).unlink(missing_ok=True)
