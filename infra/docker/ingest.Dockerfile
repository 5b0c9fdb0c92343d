# syntax=docker/dockerfile:1
# dlens-ingest on the official Ray image (CPU): ingest jobs' head and workers.
# Build from the repository root: `make images` (or docker build -f infra/docker/ingest.Dockerfile -t dlens-ingest .).
ARG RAY_VERSION=2.60.0
FROM rayproject/ray:${RAY_VERSION}-py311-cpu
WORKDIR /home/ray/dlens
RUN pip install --no-cache-dir uv==0.13.9
ENV UV_LINK_MODE=copy
# The workspace's metadata, then the locked dependencies: a layer rebuilt only when uv.lock or a
# pyproject.toml changes (uv export needs every member's pyproject.toml to read the workspace).
COPY --chown=ray:users pyproject.toml uv.lock ./
COPY --chown=ray:users libs/common/pyproject.toml libs/common/
COPY --chown=ray:users libs/model/pyproject.toml libs/model/
COPY --chown=ray:users libs/testing/pyproject.toml libs/testing/
COPY --chown=ray:users services/ingest/pyproject.toml services/ingest/
COPY --chown=ray:users services/evaluate/pyproject.toml services/evaluate/
COPY --chown=ray:users services/train/pyproject.toml services/train/
COPY --chown=ray:users services/serve/pyproject.toml services/serve/
RUN --mount=type=cache,target=/home/ray/.cache/uv,uid=1000,gid=100 \
    uv export --frozen --no-dev --no-emit-workspace --package dlens-ingest -o requirements.txt \
    && uv pip install --system -r requirements.txt
# The code: dlens-common, dlens-ingest (no dependencies left to resolve).
COPY --chown=ray:users libs/common libs/common
COPY --chown=ray:users services/ingest services/ingest
RUN uv pip install --system --no-deps ./libs/common ./services/ingest
ENTRYPOINT []
CMD ["dlens-ingest", "--help"]
