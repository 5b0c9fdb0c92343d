"""The deployment files say what exists: every manifest and compose file parses (compose against the
compose-spec schema, pod templates against the Kubernetes API models, KubeRay specs against the CRD's
fields), every image, command, entry point, config path and environment variable they name exists in the
repo or is documented, and the Ray version is the same in uv.lock, the Dockerfiles, compose and KubeRay.
Every KubeRay cluster uses Ray's token auth and sits behind the NetworkPolicy; the Secret ships no usable
API token.

tests/fixtures/compose-spec.json is schema/compose-spec.json of github.com/compose-spec/compose-spec
(commit 00655e2, Apache-2.0)."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import kubernetes.client
import pytest
import yaml
from pydantic import SecretStr

from dlens.common.config import Settings
from dlens.evaluate.cli import build_parser as evaluate_parser
from dlens.ingest.cli import build_parser as ingest_parser
from dlens.serve.args import ServeArgs, required_token
from dlens.serve.predictor import USER_CONFIG_KEYS
from dlens.train.cli import build_parser as train_parser

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
DOCS = (REPO / "docs" / "deploy.md").read_text()
SERVICES = sorted(p.name for p in (REPO / "services").iterdir() if (p / "pyproject.toml").is_file())
LIBS = sorted(p.name for p in (REPO / "libs").iterdir() if (p / "pyproject.toml").is_file())
IMAGE_WORKDIR = "/home/ray/dlens"
PARSERS = {"dlens-ingest": ingest_parser, "dlens-train": train_parser, "dlens-evaluate": evaluate_parser}

# KubeRay's ray.io/v1 spec fields (ray-operator/apis/ray/v1/*_types.go, ray-project/kuberay@4cb5aca).
KUBERAY_FIELDS = {
    "RayClusterSpec": {"upgradeStrategy", "authOptions", "suspend", "managedBy", "autoscalerOptions",
                       "headServiceAnnotations", "enableInTreeAutoscaling", "gcsFaultToleranceOptions",
                       "networkPolicy", "headGroupSpec", "rayVersion", "workerGroupSpecs"},
    "HeadGroupSpec": {"template", "headService", "enableIngress", "ingressOptions", "resources", "labels",
                      "rayStartParams", "serviceType"},
    "WorkerGroupSpec": {"suspend", "groupName", "replicas", "minReplicas", "maxReplicas", "idleTimeoutSeconds",
                        "resources", "labels", "rayStartParams", "template", "scaleStrategy", "numOfHosts"},
    "RayJobSpec": {"activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate", "metadata",
                   "clusterSelector", "submitterConfig", "managedBy", "deletionStrategy", "entrypoint",
                   "runtimeEnvYAML", "jobId", "submissionMode", "entrypointResources", "entrypointNumCpus",
                   "entrypointNumGpus", "ttlSecondsAfterFinished", "preRunningDeadlineSeconds",
                   "shutdownAfterJobFinishes", "suspend"},
    "RayServiceSpec": {"rayClusterDeletionDelaySeconds", "serveService", "upgradeStrategy", "managedBy",
                       "serveConfigV2", "rayClusterConfig", "excludeHeadPodFromServeSvc", "suspend"},
}  # fmt: skip
AUTH_MODES = {"disabled", "token"}


def ray_version_in_lock() -> str:
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    (version,) = {p["version"] for p in lock["package"] if p["name"] == "ray"}
    return version


def console_scripts(service: str) -> set[str]:
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())["project"]
    return set(project.get("scripts", {}))


# --- Dockerfiles ---------------------------------------------------------------------------------------


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(
        r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines() if not line.startswith("#"))
    )
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in text.splitlines() if line.strip()
    ]


DOCKERFILES = sorted((INFRA / "docker").glob("*.Dockerfile"))


def installed_services(instructions: list[tuple[str, str]]) -> set[str]:
    """The services a Dockerfile installs (`uv pip install ... ./services/<name>`)."""
    return {m for op, arg in instructions if op == "RUN" for m in re.findall(r"\./services/(\w+)", arg)}


def dockerignored(path: str) -> bool:
    """Whether .dockerignore leaves `path` (or a parent) out of the build context (last match wins)."""
    rules = [
        r for r in (REPO / ".dockerignore").read_text().splitlines() if r.strip() and not r.startswith("#")
    ]
    parts = path.split("/")
    excluded = False
    for rule in rules:
        negate, pattern = rule.startswith("!"), rule.lstrip("!")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if fnmatch.fnmatch(prefix, pattern) or (
                pattern.startswith("**/") and fnmatch.fnmatch(parts[depth - 1], pattern[3:])
            ):
                excluded = not negate
                break
    return excluded


def test_one_dockerfile_per_service_plus_the_cluster_image():
    assert {p.name for p in DOCKERFILES} == {f"{s}.Dockerfile" for s in [*SERVICES, "cluster"]}
    for path in DOCKERFILES:
        services = installed_services(dockerfile(path))
        assert services == (set(SERVICES) if path.stem == "cluster" else {path.stem}), path.name


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.stem)
def test_dockerfile_builds_from_what_the_repo_has(path: Path):
    instructions = dockerfile(path)
    ops = [op for op, _ in instructions]
    assert ops[0] == "ARG" and ops[1] == "FROM", "ARG RAY_VERSION, then FROM"
    (base,) = [arg for op, arg in instructions if op == "FROM"]
    flavour = "gpu" if path.stem in {"train", "serve", "cluster"} else "cpu"
    assert base == f"rayproject/ray:${{RAY_VERSION}}-py311-{flavour}"
    workdirs = [arg for op, arg in instructions if op == "WORKDIR"]
    assert workdirs == [IMAGE_WORKDIR]
    for op, arg in instructions:
        if op == "COPY":
            *sources, _ = [a for a in shlex.split(arg) if not a.startswith("--")]
            for source in sources:
                assert (REPO / source).exists(), f"{path.name}: COPY {source}: not in the repo"
                assert not dockerignored(source), f"{path.name}: COPY {source}: excluded by .dockerignore"
        if op == "RUN" and "uv export" in arg:
            packages = re.findall(r"--package (\S+)", arg)
            assert packages == ([] if path.stem == "cluster" else [f"dlens-{path.stem}"])
            assert "--frozen" in arg and "--no-dev" in arg
    # Every pyproject.toml of the workspace is copied before `uv export` reads it.
    copied = {
        shlex.split(a)[-2] for op, a in instructions if op == "COPY" and a.split()[-2].endswith(".toml")
    }
    assert {f"services/{s}/pyproject.toml" for s in SERVICES} | {
        f"libs/{lib}/pyproject.toml" for lib in LIBS
    } <= copied
    (cmd,) = [json.loads(arg) for op, arg in instructions if op == "CMD"]
    scripts = set().union(*(console_scripts(s) for s in installed_services(instructions))) | {"ray"}
    assert cmd[0] in scripts
    if "train" in installed_services(instructions):
        assert ("COPY", "--chown=ray:users configs configs") in instructions


def image_requirements(path: Path) -> set[str]:
    """The distributions an image installs: its `uv export` run here against the repo's uv.lock, plus the
    workspace packages it installs from source."""
    instructions = dockerfile(path)
    (export,) = [arg for op, arg in instructions if op == "RUN" and "uv export" in arg]
    argv = shlex.split(export.split("uv export", 1)[1].split("&&")[0])
    argv = [a for a in argv if a not in {"-o", "requirements.txt"}]
    uv = os.environ.get("UV") or shutil.which("uv") or "uv"  # `uv run` tells its children where uv is
    text = subprocess.run(
        [uv, "export", *argv, "--no-hashes", "--no-header", "--no-annotate"], cwd=REPO, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    names = {re.split(r"[=<>; @]", line.strip(), maxsplit=1)[0].lower() for line in text.splitlines()}
    sources = {
        m for op, arg in instructions if op == "RUN" for m in re.findall(r"\./((?:libs|services)/\w+)", arg)
    }
    for source in sources:
        names.add(tomllib.loads((REPO / source / "pyproject.toml").read_text())["project"]["name"])
    return {n for n in names if n and not n.startswith("#")}


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.stem)
def test_images_install_no_test_code(path: Path):
    """No image holds the test plugin or its tools; ingest and evaluate hold no torch (dlens.model's)."""
    installed = image_requirements(path)
    assert installed & {"dlens-testing", "moto", "playwright", "pytest", "pytest-timeout"} == set()
    assert "dlens-common" in installed and f"dlens-{path.stem}" in installed | {"dlens-cluster"}
    if path.stem in {"ingest", "evaluate"}:
        assert installed & {"torch", "mfai", "dlens-model", "mlflow-skinny"} == set()
    else:
        assert {"torch", "mfai", "dlens-model"} <= installed
    if path.stem in {"train", "cluster"}:
        assert "mlflow-skinny" in installed and "mlflow" not in installed  # the client, not the server


def test_the_build_context_holds_sources_and_not_data():
    for kept in [
        "uv.lock",
        "libs/common/src/dlens/common/config.py",
        "services/serve/src/dlens/serve/viewer.html",
        "configs/train/demo.yaml",
        "infra/serve/config.yaml",
    ]:
        assert not dockerignored(kept), kept
    for left in [
        ".venv/bin/python",
        "data/demo.zarr",
        "services/train/tests/test_fit.py",
        ".git/HEAD",
        "libs/common/src/dlens/common/__pycache__/x.pyc",
        "infra/deploy.py",
        "docs/deploy.md",
    ]:
        assert dockerignored(left), left


# --- compose -----------------------------------------------------------------------------------------------


def compose_files() -> list[Path]:
    return sorted(INFRA.glob("compose*.yaml"))


@pytest.mark.parametrize("path", compose_files(), ids=lambda p: p.name)
def test_compose_file_follows_the_compose_spec(path: Path):
    schema = json.loads((REPO / "tests" / "fixtures" / "compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(yaml.safe_load(path.read_text()))


def test_compose_names_what_exists():
    text = (INFRA / "compose.yaml").read_text()
    compose = yaml.safe_load(text)
    services = compose["services"]
    assert {"minio", "create-bucket", "ray-head", "ray-worker", "serve"} <= set(services)
    assert "mc mb" in services["create-bucket"]["entrypoint"]
    cluster = dockerfile(INFRA / "docker" / "cluster.Dockerfile")
    for name, service in services.items():
        image = service["image"]
        if "dlens-" not in image:
            continue
        stem = re.search(r"dlens-(\w+):", image).group(1)
        assert (INFRA / "docker" / f"{stem}.Dockerfile").is_file(), f"{name}: {image}"
        argv = shlex.split(service["command"])
        assert argv[0] in {"ray", "serve"}, f"{name}: {argv[0]}"
        if argv[:2] == ["serve", "deploy"]:
            assert (REPO / argv[2]).is_file() and ("COPY", f"--chown=ray:users {argv[2].rsplit('/', 1)[0]} "
                                                   f"{argv[2].rsplit('/', 1)[0]}") in cluster  # fmt: skip
        build = service.get("build")
        if build:
            assert (INFRA / build["context"] / build["dockerfile"]).is_file()
        environment = service["environment"]
        known = {f"DLENS_{f.upper()}" for f in Settings.model_fields}
        for key in environment:
            assert key.startswith(("AWS_", "RAY_")) or key in known, f"{name}: {key}"
    # Every variable the user may set is documented.
    for variable in set(re.findall(r"\$\{(\w+)", text)):
        assert f"`{variable}`" in DOCS, f"{variable} is not in docs/deploy.md"
    assert services["ray-head"]["ports"] == ["127.0.0.1:8265:8265", "127.0.0.1:8000:8000"]


# --- KubeRay -------------------------------------------------------------------------------------------------


def manifests() -> list[dict]:
    return [
        doc for path in sorted((INFRA / "k8s").glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
    ]


def check_model(data: object, openapi_type: str, where: str) -> None:
    """`data` has only the fields of the Kubernetes API type `openapi_type` (recursively)."""
    if openapi_type.lower().startswith("list["):
        assert isinstance(data, list), where
        for i, item in enumerate(data):
            check_model(item, openapi_type[5:-1], f"{where}[{i}]")
        return
    if openapi_type.lower().startswith(("dict(", "dict[")):
        assert isinstance(data, dict), where
        return
    cls = getattr(kubernetes.client, openapi_type, None)
    if cls is None:  # str, int, object, IntOrString, Quantity...
        return
    assert isinstance(data, dict), f"{where}: expected a {openapi_type} mapping"
    by_json = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    for key, value in data.items():
        assert key in by_json, f"{where}: {key!r} is not a field of {openapi_type}"
        check_model(value, cls.openapi_types[by_json[key]], f"{where}.{key}")


def ray_cluster_specs() -> list[tuple[str, dict]]:
    specs = []
    for doc in manifests():
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "RayCluster":
            specs.append((name, doc["spec"]))
        elif doc["kind"] == "RayJob":
            specs.append((name, doc["spec"]["rayClusterSpec"]))
        elif doc["kind"] == "RayService":
            specs.append((name, doc["spec"]["rayClusterConfig"]))
    return specs


API_VERSIONS = {"Secret": "v1", "NetworkPolicy": "networking.k8s.io/v1"}


def test_kuberay_manifests_parse_and_use_known_fields():
    kinds = sorted(d["kind"] for d in manifests())
    assert kinds == ["NetworkPolicy", "RayCluster", "RayJob", "RayJob", "RayJob", "RayService", "Secret"]
    for doc in manifests():
        assert doc["apiVersion"] == API_VERSIONS.get(doc["kind"], "ray.io/v1")
        if doc["kind"] in API_VERSIONS:
            check_model(doc, f"V1{doc['kind']}", doc["kind"])
        elif doc["kind"] != "RayCluster":
            assert set(doc["spec"]) <= KUBERAY_FIELDS[f"{doc['kind']}Spec"], doc["kind"]
    for name, spec in ray_cluster_specs():
        assert set(spec) <= KUBERAY_FIELDS["RayClusterSpec"], name
        assert spec.get("authOptions", {"mode": "token"})["mode"] in AUTH_MODES
        head, workers = spec["headGroupSpec"], spec["workerGroupSpecs"]
        assert set(head) <= KUBERAY_FIELDS["HeadGroupSpec"], name
        check_model(head["template"], "V1PodTemplateSpec", f"{name}.head.template")
        for group in workers:
            assert set(group) <= KUBERAY_FIELDS["WorkerGroupSpec"], f"{name}.{group['groupName']}"
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
            check_model(group["template"], "V1PodTemplateSpec", f"{name}.{group['groupName']}.template")


def containers(spec: dict) -> list[tuple[str, dict]]:
    groups = [("head", spec["headGroupSpec"]), *((g["groupName"], g) for g in spec["workerGroupSpecs"])]
    return [(group, c) for group, g in groups for c in g["template"]["spec"]["containers"]]


def pod_templates(spec: dict) -> list[dict]:
    return [g["template"] for g in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]]


def test_every_ray_cluster_uses_ray_token_auth():
    """The dashboard (job submission, the Serve config) and the GCS answer only with the cluster's token."""
    for name, spec in ray_cluster_specs():
        assert spec.get("authOptions") == {"mode": "token"}, f"{name}: no Ray token auth"


OPERATOR = "kuberay-operator"  # its pods' app.kubernetes.io/component, from the Helm chart or kustomize


def test_the_network_policy_covers_every_ray_pod_and_opens_only_serve():
    """Every pod of every cluster is selected; Ray's ports answer DL-ENS pods, the dashboard also the
    operator and the RayJobs' submitters; only Serve's port 8000 answers anyone."""
    (policy,) = [d["spec"] for d in manifests() if d["kind"] == "NetworkPolicy"]
    selector = policy["podSelector"]["matchLabels"]
    assert policy["policyTypes"] == ["Ingress"] and selector == {"app.kubernetes.io/part-of": "dlens"}
    for name, spec in ray_cluster_specs():
        for template in pod_templates(spec):
            assert selector.items() <= template.get("metadata", {}).get("labels", {}).items(), name
    jobs = sorted(d["metadata"]["name"] for d in manifests() if d["kind"] == "RayJob")
    opened = {}
    for rule in policy["ingress"]:
        ports = sorted(p["port"] for p in rule.get("ports", []))
        sources = rule.get("from", [])
        if sources == [{"podSelector": {"matchLabels": selector}}]:
            opened["dlens pods"] = ports
        elif not sources:
            opened["anyone"] = ports
        elif "namespaceSelector" in sources[0]:
            assert sources[0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": OPERATOR}
            opened["operator"] = ports
        else:
            (expression,) = sources[0]["podSelector"]["matchExpressions"]
            assert expression["key"] == "batch.kubernetes.io/job-name", expression
            assert sorted(expression["values"]) == jobs
            opened["submitters"] = ports
    assert opened == {"dlens pods": [], "operator": [8265], "submitters": [8265], "anyone": [8000]}


def test_the_secret_ships_no_usable_api_token():
    """The API token is a placeholder the Serve replicas refuse, never an empty "no auth"."""
    (secret,) = [d for d in manifests() if d["kind"] == "Secret"]
    token = secret["stringData"]["DLENS_API_TOKEN"]
    assert token and "DLENS_ALLOW_ANONYMOUS" not in secret["stringData"]
    with pytest.raises(ValueError, match="not a usable bearer token"):
        required_token(SecretStr(token), allow_anonymous=True)


def test_kuberay_images_secrets_and_gpus_exist():
    secrets = {d["metadata"]["name"]: d for d in manifests() if d["kind"] == "Secret"}
    known = {f"DLENS_{f.upper()}" for f in Settings.model_fields}
    for secret in secrets.values():
        for key in secret["stringData"]:
            assert key.startswith("AWS_") or key in known, key
            assert f"`{key}`" in DOCS, f"{key} is not in docs/deploy.md"
    for name, spec in ray_cluster_specs():
        images = set()
        for group, container in containers(spec):
            stem = re.fullmatch(r"dlens-(\w+):\S+", container["image"]).group(1)
            assert (INFRA / "docker" / f"{stem}.Dockerfile").is_file(), f"{name}: {container['image']}"
            images.add(stem)
            for source in container.get("envFrom", []):
                assert source["secretRef"]["name"] in secrets, f"{name}: {source}"
            gpus = container["resources"]["limits"].get("nvidia.com/gpu")
            if gpus:
                assert group == "gpu" and stem in {"train", "serve", "cluster"}, (
                    f"{name}: a GPU on a CPU image"
                )
        assert len(images) == 1, f"{name}: one image per cluster ({images})"
        kind, job = name.split("/")
        if kind == "RayJob":
            assert job == f"dlens-{stem}", "each job runs on its service's image"
        if kind == "RayService":
            assert stem == "serve"
        if kind != "RayJob" or job == "dlens-train":  # the shared cluster, Serve and training
            assert any(g == "gpu" for g, _ in containers(spec)), f"{name} has a GPU worker group"


def entrypoint_commands(entrypoint: str) -> list[list[str]]:
    return [shlex.split(part) for part in entrypoint.split("&&")]


def check_command(argv: list[str], image: Path | None, workdir: Path = REPO) -> None:
    """A dlens command parses with its CLI's parser; its config file exists (in the image's workdir, copied
    from the repo, or relative to the job's working directory `workdir`)."""
    assert argv[0] in PARSERS, f"{argv[0]} is not a batch service's console script"
    if image:
        assert argv[0] in set().union(*(console_scripts(s) for s in installed_services(dockerfile(image))))
    args = PARSERS[argv[0]]().parse_args(argv[1:])
    config = getattr(args, "config", None)
    if config is not None:
        path = (
            REPO / str(config).removeprefix(f"{IMAGE_WORKDIR}/") if config.is_absolute() else workdir / config
        )
        assert path.is_file(), f"{config}: no {path}"


def test_kuberay_jobs_run_real_commands():
    jobs = [d for d in manifests() if d["kind"] == "RayJob"]
    assert sorted(d["metadata"]["name"] for d in jobs) == ["dlens-evaluate", "dlens-ingest", "dlens-train"]
    for job in jobs:
        (image,) = {c["image"] for _, c in containers(job["spec"]["rayClusterSpec"])}
        stem = re.match(r"dlens-(\w+)", image).group(1)
        for argv in entrypoint_commands(job["spec"]["entrypoint"]):
            check_command(argv, INFRA / "docker" / f"{stem}.Dockerfile")
            store = PARSERS[argv[0]]().parse_args(argv[1:]).store
            assert store == "s3://dlens/store.zarr"


def deploy_script():
    """infra/deploy.py as a module (it is a script, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy", INFRA / "deploy.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    return deploy


def test_make_deploy_jobs_run_real_commands():
    deploy = deploy_script()
    args = deploy.main.__globals__["argparse"].Namespace(
        store="s3://dlens/store.zarr", start="2025-07-01", days=15, domain="demo",
        train_config="configs/train/demo.yaml", test_start="2025-07-13", test_days=3,
    )  # fmt: skip
    for entrypoint in [deploy.ingest_job(args), deploy.train_job(args), deploy.evaluate_job(args, "m1")]:
        for argv in entrypoint_commands(entrypoint):
            check_command(argv, None, workdir=REPO / "configs" / "train")  # the jobs' working directory
    assert "--storage s3://dlens/ray-results" in deploy.train_job(args)


def test_make_deploy_forwards_the_store_settings_to_jobs_and_replicas(monkeypatch):
    """An S3 store's endpoint and region reach every job's runtime env and the Serve replicas' (its keys
    do not: tests/test_deploy_hardening.py)."""
    deploy = deploy_script()
    settings = {"AWS_ENDPOINT_URL": "http://minio:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    args = deploy.main.__globals__["argparse"].Namespace(
        store="s3://dlens/store.zarr", http_port=8000, model="m1", allow_anonymous=False
    )
    (app,) = deploy.serve_config(args)["applications"]
    assert settings.items() <= app["runtime_env"]["env_vars"].items()
    assert app["args"]["store"] == "s3://dlens/store.zarr" and app["args"]["model"] == "m1"
    with deploy.job_runtime_env(
        deploy.main.__globals__["argparse"].Namespace(train_config=str(REPO / "configs/train/smoke.yaml"))
    ) as jobs:
        assert settings.items() <= jobs["env_vars"].items()
        assert [p.name for p in Path(jobs["working_dir"]).iterdir()] == ["smoke.yaml"]


def test_rayservice_runs_the_serve_config_on_gpus():
    from ray.serve.schema import ServeDeploySchema

    (service,) = [d for d in manifests() if d["kind"] == "RayService"]
    v2 = yaml.safe_load(service["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(v2)
    reference = yaml.safe_load((INFRA / "serve" / "config.yaml").read_text())
    (app,), (ref,) = v2["applications"], reference["applications"]
    assert app["import_path"] == ref["import_path"] and app["name"] == ref["name"]
    assert [d["name"] for d in app["deployments"]] == [d["name"] for d in ref["deployments"]]
    ServeArgs.model_validate(app["args"])
    assert app["args"]["store"] == ref["args"]["store"]
    for deployment in app["deployments"]:
        assert set(deployment["user_config"]) <= set(USER_CONFIG_KEYS)
        assert deployment["ray_actor_options"]["num_gpus"] == 1


# --- one Ray version -------------------------------------------------------------------------------------------


def test_one_ray_version_everywhere():
    version = ray_version_in_lock()
    for path in DOCKERFILES:
        (arg,) = [a for op, a in dockerfile(path) if op == "ARG" and a.startswith("RAY_VERSION=")]
        assert arg == f"RAY_VERSION={version}", path.name
    compose = yaml.safe_load((INFRA / "compose.yaml").read_text())
    assert compose["x-ray-version"] == version
    assert compose["services"]["ray-head"]["build"]["args"]["RAY_VERSION"] == version
    for name, spec in ray_cluster_specs():
        assert spec["rayVersion"] == version, name
    dry_run = subprocess.run(["make", "-n", "images"], cwd=REPO, capture_output=True, text=True, check=True)
    assert f"--build-arg RAY_VERSION={version}" in dry_run.stdout


def test_make_images_says_where_no_docker_engine_answers():
    dry_run = subprocess.run(["make", "-n", "images"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "for image in ingest evaluate train serve cluster" in dry_run.stdout
    missing = subprocess.run(
        ["make", "images"], cwd=REPO, capture_output=True, text=True,
        env={**__import__("os").environ, "DOCKER_HOST": "unix:///nonexistent/docker.sock"},
    )  # fmt: skip
    assert missing.returncode == 2
    assert "no Docker engine answers here" in missing.stderr
