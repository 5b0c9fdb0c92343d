"""infra/serve/config.yaml stays in step with the code: Serve accepts it, every key is one Serve knows,
the deployments are the application's, `args` is a valid ServeArgs and `user_config` what reconfigure applies."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from dlens.serve.app import APP_NAME, DEPLOYMENTS, build_app
from dlens.serve.args import ServeArgs
from dlens.serve.predictor import USER_CONFIG_KEYS
from dlens.serve.service import DlensService

CONFIG = Path(__file__).resolve().parents[3] / "infra" / "serve" / "config.yaml"


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def unknown_keys(data: dict, schema: type[BaseModel]) -> set[str]:
    """Keys Serve's schema would silently ignore (it does not forbid extras)."""
    return set(data) - set(schema.model_fields)


def test_serve_accepts_the_config_and_knows_every_key(config):
    ServeDeploySchema.model_validate(config)
    assert not unknown_keys(config, ServeDeploySchema)
    assert not unknown_keys(config["http_options"], HTTPOptionsSchema)
    (app,) = config["applications"]
    assert not unknown_keys(app, ServeApplicationSchema)
    for deployment in app["deployments"]:
        assert not unknown_keys(deployment, DeploymentSchema), deployment["name"]
        assert not unknown_keys(deployment.get("ray_actor_options", {}), RayActorOptionsSchema)
        assert not unknown_keys(deployment.get("autoscaling_config", {}), AutoscalingConfig)


def test_the_config_names_the_application_and_its_deployments(config):
    (app,) = config["applications"]
    assert app["name"] == APP_NAME
    assert [d["name"] for d in app["deployments"]] == list(DEPLOYMENTS) == [DlensService.name]
    module, _, attribute = app["import_path"].partition(":")
    assert getattr(importlib.import_module(module), attribute) is build_app
    # A real class, not a string: Serve validates the config's args against it (a string annotation made it
    # pass a plain dict, and the replica failed on args.store).
    assert inspect.signature(build_app).parameters["args"].annotation is ServeArgs


def test_args_and_user_config_are_what_the_code_takes(config):
    (app,) = config["applications"]
    args = ServeArgs.model_validate(app["args"])  # extra="forbid": a misspelt key fails here
    assert args.api_token is None, "the token comes from the environment, never from the config file"
    build_app(args)  # binds the deployment with these args
    (predictor,) = app["deployments"]
    assert set(predictor["user_config"]) <= set(USER_CONFIG_KEYS)
    assert predictor["user_config"]["max_batch_size"] <= args.max_ongoing_requests
    # The request bounds have one source, the args: a deployment entry would override build_app's.
    assert not {"max_ongoing_requests", "max_queued_requests"} & set(predictor)


def test_build_app_bounds_the_deployment_from_the_args():
    args = ServeArgs(store="s3://dlens/store.zarr", max_ongoing_requests=7, max_queued_requests=9)
    deployment = build_app(args)._bound_deployment
    assert (deployment.max_ongoing_requests, deployment.max_queued_requests) == (7, 9)
