"""Pytest fixtures shared by every package's tests (loaded with ``pytest_plugins``).

- `s3_endpoint`: a real S3 endpoint over HTTP (moto's server mode on a free port), with the
  standard AWS environment pointing at it, as the s3fs and zarr suites do.
- `ray_cluster`: one local Ray for the whole session; subprocesses reach it through RAY_ADDRESS.
- `synthetic_store`: one synthetic store (tiny domain, 38 days) ingested by the CLI for the session.
- `mlflow_tracking` (automatic): the session's MLflow file store, exported as MLFLOW_TRACKING_URI.
- `cams_samples`: the real public CAMS files (`../shared/data/cams-samples` beside the repository,
  or ``$DLENS_CAMS_SAMPLES``); `real_cams`: the real CAMS and EEA station files (`../shared/data/real-cams`,
  or ``$DLENS_REAL_CAMS``). Where they are absent the tests that need them are skipped with that
  reason, except under CI (``CI`` set), where their absence is a failure.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[5]


def _shared_data(folder: str, variable: str, module_level: bool) -> Path:
    """`../shared/data/<folder>` (or $<variable>); skip (fail under CI) when it is missing."""
    path = Path(os.environ.get(variable, REPOSITORY.parent / "shared" / "data" / folder))
    if not path.is_dir():
        reason = f"real data {folder} not found at {path} (set {variable})"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason, allow_module_level=module_level)
    return path


def require_cams_samples(module_level: bool = False) -> Path:
    """The directory of the real CAMS sample files; skip (fail under CI) when it is missing."""
    return _shared_data("cams-samples", "DLENS_CAMS_SAMPLES", module_level)


@pytest.fixture(scope="session")
def cams_samples() -> Path:
    """The real CAMS sample files (see `require_cams_samples`)."""
    return require_cams_samples()


@pytest.fixture(scope="session")
def real_cams() -> Path:
    """The real CAMS forecasts and EEA station files of `../shared/data/real-cams`."""
    return _shared_data("real-cams", "DLENS_REAL_CAMS", module_level=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def mlflow_tracking(tmp_path_factory) -> Iterator[str]:
    """Every fit and sweep of the session (CLI subprocesses included) logs to an MLflow file store of the
    session's own, never to the repository's data/mlruns."""
    uri = (tmp_path_factory.mktemp("mlruns")).as_uri()
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    if saved is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Start moto's S3 server and export AWS_* variables for it (before Ray starts, so workers see them)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield endpoint
    server.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the S3 endpoint; returns its s3:// URL."""
    import boto3

    name = f"dlens-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return f"s3://{name}"


@pytest.fixture(scope="session")
def ray_cluster(s3_endpoint: str) -> Iterator[str]:
    """One local Ray cluster (2 CPUs) for the session; its address is exported as RAY_ADDRESS."""
    import ray

    # The dashboard serves the State API, which Ray Train's placement-group cleaner needs between runs.
    ray.init(
        address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False,
        object_store_memory=256 * 1024**2,
    )  # fmt: skip
    address = ray.get_runtime_context().gcs_address
    os.environ["RAY_ADDRESS"] = address
    yield address
    os.environ.pop("RAY_ADDRESS", None)
    ray.shutdown()


#: The session's synthetic store (`synthetic_store`): the generator's world on the tiny domain, 38 daily runs.
SYNTHETIC = {"start": "2025-06-01", "days": "38", "domain": "tiny", "leads": "0:48:3", "seed": "3"}


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory, ray_cluster) -> Path:
    """The synthetic store of `SYNTHETIC`, ingested once per session through the `dlens-ingest` console
    script, as a user would. Shared: a test that writes to it works on a copy (`shutil.copytree`)."""
    cli = shutil.which("dlens-ingest")
    assert cli, "dlens-ingest is not installed in this environment"
    store = tmp_path_factory.mktemp("synthetic") / "synthetic.zarr"
    options = [item for key, value in SYNTHETIC.items() for item in (f"--{key}", value)]
    done = subprocess.run(
        [cli, "--no-progress", "synthetic", "--store", str(store), *options],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "units written" in done.stdout, done.stdout
    return store


def tree_digest(root: Path, include=lambda p: True) -> dict[str, str]:
    """sha256 of every file under `root`, keyed by relative path."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and include(p)
    }
