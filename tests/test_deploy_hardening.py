"""Fast checks of what `make deploy` and the compose stack hand to others: no secret in Ray's job or Serve
state, a Serve config whose replicas need a token unless anonymous access is asked for, shell-safe
entrypoints, only the train config uploaded, and a compose stack that publishes on loopback only, pins its
images, holds no default secret and is not started without Serve's token."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shlex
import subprocess
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from dlens.common.config import Settings
from dlens.serve.args import ServeArgs

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": "secret-access-key-value",
    "AWS_SESSION_TOKEN": "session-token-value",
    "AWS_ACCESS_KEY_ID": "access-key-id-value",
    "DLENS_API_TOKEN": "api-token-value",
    "RAY_AUTH_TOKEN": "ray-token-value",
}
SETTINGS = {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
HOSTILE = "x; rm -rf ~ #$(touch /tmp/owned)`id`"


@pytest.fixture(scope="module")
def deploy() -> ModuleType:
    """infra/deploy.py as a module (it is a script, not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_hardening", INFRA / "deploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pipeline_args(**overrides: object) -> argparse.Namespace:
    values = dict(store="s3://dlens/store.zarr", start="2025-07-01", days=15, domain="demo",
                  train_config=str(REPO / "configs" / "train" / "smoke.yaml"), test_start="2025-07-13",
                  test_days=3, http_port=8000, model="m1", allow_anonymous=False)  # fmt: skip
    return argparse.Namespace(**(values | overrides))


# --- no secret in Ray's cluster state ----------------------------------------------------------------------


def test_no_secret_reaches_the_jobs_or_the_serve_config(deploy, monkeypatch):
    """Whatever the submitting shell holds, neither a job's runtime env nor the Serve config (both readable
    by anyone who can list jobs or read /api/serve/applications/) carries a credential."""
    for key, value in (SECRETS | SETTINGS).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://user:mlflow-password-value@mlflow:5000")
    args = pipeline_args()
    with deploy.job_runtime_env(args) as runtime_env:
        state = json.dumps([runtime_env, deploy.serve_config(args)])
    for secret in [*SECRETS.values(), "mlflow-password-value"]:
        assert secret not in state
    (app,) = deploy.serve_config(args)["applications"]
    assert SETTINGS.items() <= app["runtime_env"]["env_vars"].items()
    assert SETTINGS.items() <= runtime_env["env_vars"].items()


def test_the_serve_config_needs_a_token_unless_allow_anonymous(deploy, monkeypatch):
    """The replicas take the token from their nodes (never from the config): without one there they refuse
    to start, unless `--allow-anonymous` wrote `allow_anonymous: true` into the config."""
    monkeypatch.delenv("DLENS_API_TOKEN", raising=False)
    monkeypatch.delenv("DLENS_ALLOW_ANONYMOUS", raising=False)
    (app,) = deploy.serve_config(pipeline_args())["applications"]
    assert "api_token" not in app["args"] and "allow_anonymous" not in app["args"]
    args = ServeArgs.model_validate(app["args"])
    with pytest.raises(ValueError, match=r"^no API token: set DLENS_API_TOKEN"):
        args.bearer_token(Settings())
    monkeypatch.setenv("DLENS_API_TOKEN", "0123456789abcdef")  # the nodes' environment
    assert args.bearer_token(Settings()).get_secret_value() == "0123456789abcdef"
    monkeypatch.delenv("DLENS_API_TOKEN")
    (app,) = deploy.serve_config(pipeline_args(allow_anonymous=True))["applications"]
    assert app["args"]["allow_anonymous"] is True
    assert ServeArgs.model_validate(app["args"]).bearer_token(Settings()) is None


# --- shell-safe entrypoints, only the config uploaded --------------------------------------------------------


def test_entrypoints_pass_hostile_values_as_single_arguments(deploy):
    store = f"s3://dlens/{HOSTILE}"
    config = HOSTILE.replace("/", "_") + ".yaml"
    args = pipeline_args(domain=HOSTILE, store=store, train_config=f"/tmp/{config}")
    assert shlex.split(deploy.ingest_job(args)) == [
        "dlens-ingest", "--no-progress", "synthetic", "--store", store, "--start", "2025-07-01",
        "--days", "15", "--domain", HOSTILE, "--seed", "0",
    ]  # fmt: skip
    assert shlex.split(deploy.train_job(args)) == [
        "dlens-train", "--no-progress", "fit", "--store", store, "--config", config,
        "--storage", "s3://dlens/ray-results", "&&",
        "dlens-train", "--no-progress", "predict", "--store", store, "--model", "latest",
        "--start", "2025-07-13", "--days", "3",
    ]  # fmt: skip
    assert shlex.split(deploy.evaluate_job(args, "smoke-20250701t000000")) == [
        "dlens-evaluate", "--no-progress", "--store", store, "--start", "2025-07-13", "--days", "3",
        "--products", "dlens-smoke-20250701t000000,median,weighted", "--out", "evaluate-report",
    ]  # fmt: skip


@pytest.mark.parametrize("model_id", ["m1;rm", "m1$(id)", "m1`id`", "m1|sh", "../m1", "m1\nid", ""])
def test_a_model_id_with_shell_characters_is_refused_in_one_line(deploy, model_id):
    with pytest.raises(RuntimeError, match=r"^the train job printed an unusable model id .*$") as refused:
        deploy.evaluate_job(pipeline_args(), model_id)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("option", ["--start", "--test-start"])
def test_a_start_that_is_not_a_date_is_refused(deploy, option, capsys):
    with pytest.raises(SystemExit) as refused:
        deploy.main(["--address", "http://127.0.0.1:1", option, "2025-07-01; rm -rf ~", "status"])
    assert refused.value.code == 2
    assert f"{option}: not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_the_jobs_working_dir_holds_only_the_train_config(deploy, tmp_path):
    """A config in the home directory must not upload ~/.aws (or anything else beside it)."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = x\n")
    (tmp_path / "notes.txt").write_text("private")
    config = tmp_path / "x.yaml"
    config.write_text("name: x\n")
    with deploy.job_runtime_env(pipeline_args(train_config=str(config))) as runtime_env:
        working_dir = Path(runtime_env["working_dir"])
        assert [p.name for p in working_dir.rglob("*")] == ["x.yaml"]
        assert (working_dir / "x.yaml").read_text() == "name: x\n"
    assert not working_dir.exists()


# --- the compose stack --------------------------------------------------------------------------------------

COMPOSE_TEXT = (INFRA / "compose.yaml").read_text()
COMPOSE = yaml.safe_load(COMPOSE_TEXT)
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN", re.IGNORECASE)


def published(port: str | dict) -> str | None:
    """The host address a `ports` entry binds (None: every interface)."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = str(port).rsplit(":", 2)
    return parts[0] if len(parts) == 3 else None


def test_compose_publishes_on_loopback_only():
    for name, service in COMPOSE["services"].items():
        for port in service.get("ports", []):
            assert published(port) == "127.0.0.1", f"{name}: {port} binds every interface"


def test_compose_pins_its_registry_images():
    """Every image compose pulls names a release; the dlens image is the one `make up` builds from this
    checkout (its tag is the Makefile's IMAGE_TAG)."""
    built = {COMPOSE["services"][name]["image"] for name, s in COMPOSE["services"].items() if "build" in s}
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        if image in built:
            continue
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag and tag not in {"", "latest"}, f"{name}: {image} is not pinned"


def test_compose_holds_no_default_secret():
    """A secret-like variable has no default (`${VAR:?…}` or an empty `${VAR:-}`), and no secret-like
    environment entry is a literal."""
    for variable, default in re.findall(r"\$\{(\w+):?-([^}]*)\}", COMPOSE_TEXT):
        assert not (SECRET_NAME.search(variable) and default), f"${{{variable}}} defaults to {default!r}"
    environments = [COMPOSE["x-dlens-env"], *(s.get("environment", {}) for s in COMPOSE["services"].values())]
    for environment in environments:
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{\w+(:\?[^}]*|:-)\}", str(value)), f"{key}: {value}"
    assert "dlens-secret" not in COMPOSE_TEXT
    assert "${MINIO_ROOT_PASSWORD:?" in COMPOSE_TEXT


def test_make_up_needs_serves_token_or_allow_anonymous():
    """The containers get the caller's DLENS_API_TOKEN and DLENS_ALLOW_ANONYMOUS (false unless set);
    `make up` refuses in one line, before Docker, where neither would let the replicas start."""
    env = COMPOSE["x-dlens-env"]
    assert env["DLENS_API_TOKEN"] == "${DLENS_API_TOKEN:-}"
    assert env["DLENS_ALLOW_ANONYMOUS"] == "${DLENS_ALLOW_ANONYMOUS:-false}"
    caller = {k: v for k, v in os.environ.items() if k not in {"DLENS_API_TOKEN", "DLENS_ALLOW_ANONYMOUS"}}
    done = subprocess.run(
        ["make", "-s", "up"], cwd=REPO, capture_output=True, text=True,
        env=caller | {"DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("up: set DLENS_API_TOKEN (export DLENS_API_TOKEN=$(openssl rand -hex 32))")
