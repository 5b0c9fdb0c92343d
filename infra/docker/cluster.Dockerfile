# syntax=docker/dockerfile:1
# Every DL-ENS service on the official Ray GPU image: a shared cluster's head and workers, on which
# make deploy runs the ingest, train and evaluate jobs and the Serve application (compose, infra/k8s/raycluster.yaml).
# Build from the repository root: `make images` (or docker build -f infra/docker/cluster.Dockerfile -t dlens-cluster .).
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-gpu
WORKDIR /home/ray/dlens
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_LINK_MODE=copy
# The workspace's metadata, then the locked dependencies: a layer rebuilt only when uv.lock or a
# pyproject.toml changes (uv export needs every member's pyproject.toml to read the workspace). The root
# project's dependencies are every service; --no-dev leaves out the dev group (dlens-testing, the test tools).
COPY --chown=ray:users pyproject.toml uv.lock ./
COPY --chown=ray:users libs/common/pyproject.toml libs/common/
COPY --chown=ray:users libs/model/pyproject.toml libs/model/
COPY --chown=ray:users libs/testing/pyproject.toml libs/testing/
COPY --chown=ray:users services/ingest/pyproject.toml services/ingest/
COPY --chown=ray:users services/evaluate/pyproject.toml services/evaluate/
COPY --chown=ray:users services/train/pyproject.toml services/train/
COPY --chown=ray:users services/serve/pyproject.toml services/serve/
RUN --mount=type=cache,target=/home/ray/.cache/uv,uid=1000,gid=100 \
    uv export --frozen --no-dev --no-emit-workspace -o requirements.txt \
    && uv pip install --system -r requirements.txt
# The code: dlens-common, dlens-model, every service, the train configs and the Serve config (no dependencies left to resolve).
COPY --chown=ray:users libs/common libs/common
COPY --chown=ray:users libs/model libs/model
COPY --chown=ray:users services/ingest services/ingest
COPY --chown=ray:users services/evaluate services/evaluate
COPY --chown=ray:users services/train services/train
COPY --chown=ray:users services/serve services/serve
COPY --chown=ray:users configs configs
COPY --chown=ray:users infra/serve infra/serve
RUN uv pip install --system --no-deps ./libs/common ./libs/model ./services/ingest ./services/evaluate ./services/train ./services/serve
ENTRYPOINT []
CMD ["ray", "--help"]
