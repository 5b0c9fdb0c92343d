"""infra/serve/config.yaml stays in step with the code: Serve accepts it, every key is one Serve knows,
the deployments are the application's, `args` is a valid ServeArgs and `user_config` what reconfigure applies;
its replicas refuse to start without a bearer token unless anonymous access is asked for."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, SecretStr
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from dlens.common.config import Settings
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


def test_the_config_needs_a_token_from_the_nodes_or_allow_anonymous(config, no_token):
    (app,) = config["applications"]
    args = ServeArgs.model_validate(app["args"])
    with pytest.raises(ValueError, match=r"^no API token: set DLENS_API_TOKEN .*DLENS_ALLOW_ANONYMOUS"):
        args.bearer_token(Settings())
    no_token.setenv("DLENS_API_TOKEN", "0123456789abcdef")
    assert args.bearer_token(Settings()).get_secret_value() == "0123456789abcdef"
    no_token.delenv("DLENS_API_TOKEN")
    no_token.setenv("DLENS_ALLOW_ANONYMOUS", "true")
    assert args.bearer_token(Settings()) is None
    assert ServeArgs.model_validate(app["args"] | {"allow_anonymous": True}).bearer_token(Settings()) is None
    with pytest.raises(ValueError, match="no API token"):  # the args' own word wins over the environment
        ServeArgs.model_validate(app["args"] | {"allow_anonymous": False}).bearer_token(Settings())
    with pytest.raises(ValueError, match="not a usable bearer token"):  # an empty-looking token is no way out
        ServeArgs(store="s", api_token=SecretStr(" ")).bearer_token(Settings())


def test_a_replica_without_a_token_refuses_before_opening_the_store(no_token, tmp_path):
    service = DlensService.func_or_class.__bases__[0]  # the class itself, under Serve's ingress wrapper
    with pytest.raises(ValueError, match=r"^no API token"):
        service(ServeArgs(store=str(tmp_path / "nowhere.zarr")))
