"""`make deploy` against a real Ray cluster started here (`ray start --head`, dashboard on loopback): the
ingest, train and evaluate jobs succeed, the Serve application becomes healthy and answers with the bearer
token of the node's environment; a job that fails makes `make deploy` exit non-zero with the job's error; a
cluster that cannot run the pipeline's entry points stops deploy at its preflight job, before any other."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from dlens.testing.plugin import free_port
from dlens.testing.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
RAY = shutil.which("ray")
DASHBOARD_TIMEOUT_S = 420
#: Serve's bearer token, in the node's environment only (as a Secret or compose gives it), never in the config.
API_TOKEN = "deploy-test-token-0123456789"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> str:
    """A one-node cluster of its own (2 CPUs), stopped with its `ray start --block` process."""
    dashboard = free_port()
    # Every port its own: the session's cluster (ray.init in this process) holds Ray's default ones.
    ports = (
        "--port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--runtime-env-agent-port",
        "--metrics-export-port",
        "--ray-client-server-port",
        "--node-manager-port",
        "--object-manager-port",
    )
    command = [
        RAY,
        "start",
        "--head",
        "--block",
        "--num-cpus",
        "2",
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dashboard),
        "--include-dashboard",
        "true",
        "--disable-usage-stats",
    ]
    command += [arg for option in ports for arg in (option, str(free_port()))]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"} | {
        "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "DLENS_API_TOKEN": API_TOKEN,
    }  # fmt: skip
    log = tmp_path_factory.mktemp("ray-head") / "ray-start.log"
    with log.open("w") as out:
        head = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_for_job_api(address, head, log)
    except BaseException:
        stop(head)
        raise
    yield address
    stop(head)


def wait_for_job_api(
    address: str, head: subprocess.Popen, log: Path, timeout_s: float = DASHBOARD_TIMEOUT_S
) -> None:
    """Until the dashboard's job API answers, as `make deploy` needs it; on a loaded 2-core machine the
    dashboard has taken over two minutes to start. Fails with the head's output if it exits or never answers."""
    deadline, last = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        if head.poll() is not None:
            pytest.fail(
                f"ray start exited ({head.returncode}) before its dashboard answered:\n{log.read_text()[-3000:]}"
            )
        try:
            last = httpx.get(f"{address}/api/jobs/", timeout=5).status_code
            if last in (200, 401):  # 401: up, and asking for the token make deploy sends
                return
        except httpx.HTTPError as exc:  # not listening yet
            last = exc
        time.sleep(2)
    pytest.fail(
        f"no job API at {address} after {timeout_s:.0f} s ({last}); ray start said:\n{log.read_text()[-3000:]}"
    )


def stop(head: subprocess.Popen) -> None:
    head.send_signal(signal.SIGTERM)
    head.wait(timeout=120)


def make_deploy(address: str, store: str, port: int, target: str = "deploy") -> subprocess.CompletedProcess:
    variables = [f"RAY_ADDRESS={address}", f"STORE={store}", "DAYS=6", "DOMAIN=tiny",
                 "TRAIN_CONFIG=configs/train/smoke.yaml", "TEST_START=2025-07-05", "TEST_DAYS=2", f"SERVE_PORT={port}"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in {"RAY_ADDRESS", "DLENS_API_TOKEN"}}
    return subprocess.run(
        ["make", "-s", target, *variables], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200
    )


@pytest.mark.slow
def test_make_deploy_runs_the_jobs_and_serves(cluster, tmp_path):
    """On a local store the head reaches (an S3 store doubled this test's time through moto: the S3 path's
    own parts, the checkpoints in the bucket and the settings forwarded to jobs and replicas, are checked
    in tests/test_infra.py; the readers and writers on S3 in the services' own suites)."""
    port = free_port()
    store = tmp_path / "store.zarr"
    done = make_deploy(cluster, str(store), port)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for step in ("preflight", "ingest", "train", "evaluate"):
        assert f"== {step}: succeeded" in done.stdout
    assert "== serve: healthy" in done.stdout
    assert any((store / "reports").iterdir()), "the evaluate job's report is in the store"
    assert 'curl -s -H "Authorization: Bearer $DLENS_API_TOKEN"' in done.stdout
    assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=60).status_code == 401
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    models = httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=auth, timeout=60).json()
    assert models and models[0]["id"].startswith("smoke-")
    forecast = httpx.get(
        f"http://127.0.0.1:{port}/v1/forecast/o3", params={"run": "2025-07-05T00:00", "lead": 24},
        headers=auth, timeout=120,
    )  # fmt: skip
    assert forecast.status_code == 200 and len(forecast.json()["dlens"]) == 24
    status = make_deploy(cluster, str(store), port, "deploy-status")
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout and "RUNNING" in status.stdout


@pytest.mark.slow
def test_a_failing_job_stops_make_deploy_with_its_error(cluster, tmp_path):
    (tmp_path / "file").write_text("not a directory")
    done = make_deploy(cluster, str(tmp_path / "file" / "store.zarr"), free_port())
    assert done.returncode != 0
    assert "deploy: job ingest" in done.stderr and "FAILED" in done.stderr
    assert "== train" not in done.stdout


@pytest.mark.slow
def test_a_cluster_without_the_entry_points_stops_at_the_preflight(cluster, tmp_path, monkeypatch, capsys):
    """As on a cluster started outside the project's environment: the jobs' runtime env gives them a PATH
    without the environment's bin (and its `python`), so the real preflight job fails on the cluster, and
    deploy exits 1 with one paragraph naming what is missing and how to start a cluster, submitting nothing
    more."""
    deploy = load_script(REPO / "infra" / "deploy.py")
    monkeypatch.setattr(deploy, "forwarded_env", lambda: {"PATH": "/usr/bin:/bin"})
    client = deploy.JobSubmissionClient(cluster)
    before = {job.submission_id for job in client.list_jobs()}
    code = deploy.main(["--address", cluster, "--store", str(tmp_path / "store.zarr"),
                        "--train-config", str(REPO / "configs" / "train" / "smoke.yaml")])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 1, out[-3000:] + err[-3000:]
    (message,) = [line for line in err.splitlines() if line.startswith("deploy:")]  # beside Ray's INFO lines
    assert message.startswith(
        "deploy: the cluster cannot run dlens-ingest, dlens-train, dlens-evaluate, dlens.serve (not on its"
    ), err
    assert "`uv run ray start --head` in the repository) or from the dlens-cluster image" in message
    assert "Traceback" not in err
    (submitted,) = [job for job in client.list_jobs() if job.submission_id not in before]
    assert submitted.submission_id.startswith("dlens-preflight-") and submitted.status.value == "FAILED"
    assert "== ingest" not in out


@pytest.mark.slow
def test_wait_returns_once_the_dashboard_answers(cluster):
    done = subprocess.run(
        [sys.executable, "infra/deploy.py", "--address", cluster, "wait"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0 and f"dashboard ready at {cluster}" in done.stdout, done.stderr


@pytest.mark.parametrize("target", ["deploy", "deploy-status"])
def test_no_cluster_at_the_address_is_one_clear_line(target):
    address = f"http://127.0.0.1:{free_port()}"
    done = make_deploy(address, "data/never.zarr", free_port(), target)
    assert done.returncode != 0
    assert f"deploy: no Ray dashboard answers at {address}" in done.stderr
    assert "Traceback" not in done.stderr and "== ingest" not in done.stdout
