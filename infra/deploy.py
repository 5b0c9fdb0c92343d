"""`make deploy`: the DL-ENS pipeline on a Ray cluster through its dashboard, then the Serve application.

First submits a preflight job that checks the cluster can run the pipeline's entry points (a cluster
started outside the project's environment cannot: it stops there, saying how to start one that can). Then
submits the ingest, train (fit, then predict the test period) and evaluate jobs in order with the job
submission API, streams each job's logs, stops at the first failure with its message, then deploys
infra/serve/config.yaml (its `args` set from the options) and waits until the application answers.

    uv run python infra/deploy.py --address http://127.0.0.1:8265 --store s3://dlens/store.zarr \\
        --start 2025-07-01 --days 15 --domain demo --train-config configs/train/demo.yaml \\
        --test-start 2025-07-13 --test-days 3
    uv run python infra/deploy.py --address ... status
    uv run python infra/deploy.py --address ... wait     # until the dashboard answers (make up)

Exit status: 0 deployed (or status shown); 1 a job failed or Serve did not become healthy; 2 bad options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime
import os
import re
import shlex
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from dlens.common.layout import check_name

TOKEN_FILE = Path.home() / ".ray" / "auth_token"


def use_cluster_token() -> None:
    """Ray 2.60 clusters require a token by default: send it when one is at hand (RAY_AUTH_TOKEN or the
    ~/.ray/auth_token that `ray start` writes) and RAY_AUTH_MODE does not say otherwise."""
    if "RAY_AUTH_MODE" not in os.environ and (os.environ.get("RAY_AUTH_TOKEN") or TOKEN_FILE.is_file()):
        os.environ["RAY_AUTH_MODE"] = "token"


use_cluster_token()  # before Ray is imported: it reads RAY_AUTH_MODE once

from ray.dashboard.modules.serve.sdk import ServeSubmissionClient  # noqa: E402
from ray.job_submission import JobStatus, JobSubmissionClient  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SERVE_CONFIG = REPO / "infra" / "serve" / "config.yaml"
#: What the jobs get from the submitting shell: settings, never credentials. Ray keeps a job's runtime env
#: and the Serve config in its cluster state, readable by anyone who can list jobs; the keys come from the
#: nodes' own environment (compose's x-dlens-env, a Kubernetes Secret, an instance or workload identity).
FORWARDED_ENV = ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "DLENS_LOG_LEVEL", "MLFLOW_TRACKING_URI",
                 "DLENS_MLFLOW_TRACKING_URI", "DLENS_MLFLOW_EXPERIMENT")  # fmt: skip
#: What the pipeline runs where its jobs run: the services' console scripts, and the package that the
#: Serve application imports.
ENTRY_POINTS = ("dlens-ingest", "dlens-train", "dlens-evaluate")
SERVE_PACKAGE = "dlens.serve"
START_CLUSTER = ("Start the cluster from the project's environment (`ray stop`, then `uv run ray start "
                 "--head` in the repository) or from the dlens-cluster image (`make up`).")  # fmt: skip


class JobFailed(RuntimeError):
    """A job that did not succeed, with the logs it printed."""

    def __init__(self, message: str, logs: str) -> None:
        super().__init__(message)
        self.logs = logs


def preflight_job() -> str:
    """A shell line that fails, printing `missing: <names>`, unless every ENTRY_POINTS is on the PATH and
    `python` imports SERVE_PACKAGE."""
    checks = [f'command -v {name} >/dev/null || m="$m {name}"' for name in ENTRY_POINTS]
    checks.append(f'python -c "import {SERVE_PACKAGE}" 2>/dev/null || m="$m {SERVE_PACKAGE}"')
    return "m=; " + "; ".join(checks) + '; [ -z "$m" ] || { echo "missing:$m"; exit 1; }'


def ingest_job(args: argparse.Namespace) -> str:
    return (f"dlens-ingest --no-progress synthetic --store {shlex.quote(args.store)} --start {args.start} "
            f"--days {args.days} --domain {shlex.quote(args.domain)} --seed 0")  # fmt: skip


def train_job(args: argparse.Namespace) -> str:
    """Fit (it prints `model: <id>`, which the driver reads from the logs), then predict the test period.

    With an S3 store the checkpoints go to the bucket's ray-results/, which every node of a multi-node
    cluster reaches (Ray Train needs shared storage there)."""
    store, config = shlex.quote(args.store), shlex.quote(Path(args.train_config).name)
    bucket = re.match(r"^s3://([^/]+)", args.store)
    storage = f" --storage s3://{bucket.group(1)}/ray-results" if bucket else ""
    return (f"dlens-train --no-progress fit --store {store} --config {config}{storage} && "
            f"dlens-train --no-progress predict --store {store} --model latest "
            f"--start {args.test_start} --days {args.test_days}")  # fmt: skip


def evaluate_job(args: argparse.Namespace, model_id: str) -> str:
    """The evaluate job of `model_id`; RuntimeError if the id is not one the registry accepts."""
    try:
        check_name(model_id, "model id")
    except ValueError as exc:
        raise RuntimeError(f"the train job printed an unusable {exc}") from None
    return (f"dlens-evaluate --no-progress --store {shlex.quote(args.store)} --start {args.test_start} "
            f"--days {args.test_days} --products {shlex.quote(f'dlens-{model_id},median,weighted')} "
            f"--out evaluate-report")  # fmt: skip


def submit_when_ready(client: JobSubmissionClient, timeout_s: float = 180, **job: object) -> None:
    """Submit a job, waiting for the head's job agent where the cluster has just started (Ray answers
    "No available agent to submit job" until it is up)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            client.submit_job(**job)
            return
        except RuntimeError as exc:
            if "No available agent" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(2)


def run_job(client: JobSubmissionClient, name: str, entrypoint: str, runtime_env: dict) -> str:
    """Submit one job, stream its logs and return them; JobFailed with its message if it fails."""
    submission = f"dlens-{name}-{time.strftime('%Y%m%dt%H%M%S')}"
    print(f"== {name}: submitting {submission}\n   $ {entrypoint}", flush=True)
    submit_when_ready(client, entrypoint=entrypoint, submission_id=submission, runtime_env=runtime_env)

    logs: list[str] = []

    async def stream() -> None:
        async for lines in client.tail_job_logs(submission):
            print(lines, end="", flush=True)
            logs.append(lines)

    asyncio.run(stream())
    info = client.get_job_info(submission)
    while info.status not in {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED}:
        time.sleep(1)
        info = client.get_job_info(submission)
    if info.status != JobStatus.SUCCEEDED:
        raise JobFailed(f"job {name} ({submission}) {info.status.value}: {info.message}", "".join(logs))
    print(f"== {name}: succeeded", flush=True)
    return "".join(logs)


def check_entry_points(client: JobSubmissionClient, runtime_env: dict) -> None:
    """Run preflight_job as the pipeline's jobs run (same runtime env, on the node that runs their drivers);
    RuntimeError naming what is missing there, with how to start a cluster that has it."""
    try:
        run_job(client, "preflight", preflight_job(), runtime_env)
    except JobFailed as exc:
        missing = re.search(r"^missing: (.+)$", exc.logs, re.MULTILINE)
        if missing is None:
            raise
        raise RuntimeError(
            f"the cluster cannot run {', '.join(missing.group(1).split())} (not on its nodes' PATH, or not "
            "importable by their `python`): it was not started from the project's environment, and no "
            f"pipeline job was submitted. {START_CLUSTER}"
        ) from None


def serve_config(args: argparse.Namespace) -> dict:
    """infra/serve/config.yaml with the store, the model and the HTTP port of this deployment. Its replicas
    require the bearer token of their nodes' environment (DLENS_API_TOKEN) unless --allow-anonymous."""
    config = copy.deepcopy(yaml.safe_load(SERVE_CONFIG.read_text()))
    config["http_options"]["port"] = args.http_port
    (app,) = config["applications"]
    app["args"] |= {"store": args.store, "model": args.model}
    if args.allow_anonymous:
        app["args"]["allow_anonymous"] = True
    app.setdefault("runtime_env", {}).setdefault("env_vars", {}).update(forwarded_env())
    return config


def wait_healthy(serve_client: ServeSubmissionClient, url: str, timeout_s: float) -> None:
    """Until the application is RUNNING and /readyz answers 200; RuntimeError with Serve's message after."""
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        details = serve_client.get_serve_details()
        app = details.get("applications", {}).get("dlens", {})
        last = f"{app.get('status')}: {app.get('message', '')}".strip()
        if app.get("status") == "DEPLOY_FAILED":
            raise RuntimeError(f"serve deploy failed: {last}")
        if app.get("status") == "RUNNING":
            try:
                with urllib.request.urlopen(f"{url}/readyz", timeout=60) as response:
                    if response.status == 200:
                        return
            except OSError as exc:
                last = f"RUNNING, /readyz: {exc}"
        time.sleep(2)
    raise RuntimeError(f"the Serve application is not healthy after {timeout_s:.0f} s ({last})")


def forwarded_env() -> dict[str, str]:
    """The FORWARDED_ENV settings the shell has, less any URL that embeds a password (said on stderr)."""
    forwarded = {}
    for key in FORWARDED_ENV:
        value = os.environ.get(key)
        if value and urllib.parse.urlsplit(value).password:
            print(f"deploy: {key} holds a password: not forwarded (give it to the nodes)", file=sys.stderr)
        elif value:
            forwarded[key] = value
    return forwarded


@contextlib.contextmanager
def job_runtime_env(args: argparse.Namespace) -> Iterator[dict]:
    """The jobs' runtime env: a working directory holding only a copy of the train config (Ray uploads the
    whole folder), and the forwarded settings. The folder is removed on exit."""
    with tempfile.TemporaryDirectory(prefix="dlens-deploy-") as working_dir:
        shutil.copyfile(args.train_config, Path(working_dir) / Path(args.train_config).name)
        yield {
            "working_dir": working_dir,
            "env_vars": {"RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", **forwarded_env()},
        }


def deploy(args: argparse.Namespace) -> int:
    client = JobSubmissionClient(args.address)
    try:
        with job_runtime_env(args) as runtime_env:
            check_entry_points(client, runtime_env)
            run_job(client, "ingest", ingest_job(args), runtime_env)
            fitted = re.search(
                r"^model: (\S+)", run_job(client, "train", train_job(args), runtime_env), re.MULTILINE
            )
            if fitted is None:
                raise RuntimeError("the train job did not print the id of the model it published")
            args.model = fitted.group(1)
            run_job(client, "evaluate", evaluate_job(args, args.model), runtime_env)
        print("== serve: deploying infra/serve/config.yaml", flush=True)
        serve_client = ServeSubmissionClient(args.address)
        serve_client.deploy_applications(serve_config(args))
        url = f"http://{args.http_host}:{args.http_port}"
        wait_healthy(serve_client, url, args.serve_timeout)
    except RuntimeError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    auth = "" if args.allow_anonymous else ' -H "Authorization: Bearer $DLENS_API_TOKEN"'
    print(
        f"== serve: healthy at {url}/ (viewer), {url}/docs (API)\n   try: curl -s{auth} '{url}/v1/models'",
        flush=True,
    )
    return 0


def status(args: argparse.Namespace) -> int:
    client = JobSubmissionClient(args.address)
    print(f"{'job':<36} {'status':<10} message")
    for job in sorted(client.list_jobs(), key=lambda j: j.start_time or 0):
        if (job.submission_id or "").startswith("dlens-"):
            print(f"{job.submission_id:<36} {job.status.value:<10} {(job.message or '')[:80]}")
    details = ServeSubmissionClient(args.address).get_serve_details()
    for name, app in details.get("applications", {}).items():
        print(f"serve application {name}: {app.get('status')}")
        for deployment, d in app.get("deployments", {}).items():
            print(f"  {deployment}: {d.get('status')}, {len(d.get('replicas', []))} replica(s)")
    return 0


def wait_dashboard(args: argparse.Namespace, timeout_s: float = 300) -> int:
    """Until the dashboard's job API answers (a stack just started): 0, or 1 with the last error."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            JobSubmissionClient(args.address).list_jobs()
        except Exception as exc:  # connection refused, 5xx, not ready: whatever it is, try again
            if time.monotonic() > deadline:
                print(
                    f"deploy: no dashboard at {args.address} after {timeout_s:.0f} s ({exc})", file=sys.stderr
                )
                return 1
            time.sleep(3)
        else:
            print(f"dashboard ready at {args.address}", flush=True)
            return 0


def iso_date(text: str) -> datetime.date:
    """A YYYY-MM-DD option (it goes into the jobs' command lines)."""
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--address", default=os.environ.get("RAY_ADDRESS", "http://127.0.0.1:8265"),
                        help="the cluster's dashboard (default RAY_ADDRESS)")  # fmt: skip
    parser.add_argument("command", nargs="?", default="deploy", choices=["deploy", "status", "wait"])
    parser.add_argument("--store", default="s3://dlens/store.zarr")
    parser.add_argument("--start", type=iso_date, default="2025-07-01")
    parser.add_argument("--days", type=int, default=15)
    parser.add_argument("--domain", default="demo")
    parser.add_argument("--train-config", default="configs/train/demo.yaml")
    parser.add_argument("--test-start", type=iso_date, default="2025-07-13")
    parser.add_argument("--test-days", type=int, default=3)
    parser.add_argument(
        "--http-host", default="127.0.0.1", help="where the Serve HTTP proxy is reached from here"
    )
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--serve-timeout", type=float, default=300)
    parser.add_argument(
        "--allow-anonymous", action="store_true",
        help="serve without a bearer token (anyone who reaches the Serve port may call the API); by default "
        "the replicas require DLENS_API_TOKEN from their nodes' environment and refuse to start without it",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not re.match(r"^\w+://", args.address):
        args.address = f"http://{args.address}"
    if args.command == "wait":
        return wait_dashboard(args)
    if "://" not in args.store:  # a path on the cluster's nodes: the jobs run in their own directories
        args.store = str(Path(args.store).resolve())
    if args.command == "deploy" and not Path(args.train_config).is_file():
        print(f"deploy: no train config {args.train_config}", file=sys.stderr)
        return 2
    try:
        return status(args) if args.command == "status" else deploy(args)
    except ConnectionError as exc:  # Ray's SDK: nothing answers at the address, or not a dashboard
        print(f"deploy: no Ray dashboard answers at {args.address} ({exc}); start a cluster (`uv run ray "
              "start --head`, `make up`) or point RAY_ADDRESS at one", file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
