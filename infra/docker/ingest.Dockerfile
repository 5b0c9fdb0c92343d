# dlens-ingest on the official Ray image: the same image serves as Ray head, Ray worker and job driver.
# Build from the repository root:  docker build -f infra/docker/ingest.Dockerfile -t dlens-ingest .
FROM rayproject/ray:2.60.0-py311-cpu
USER root
RUN pip install --no-cache-dir uv
WORKDIR /opt/dlens
COPY pyproject.toml uv.lock ./
COPY libs/common libs/common
COPY services/ingest services/ingest
# Install the workspace packages into the image's Python (the one Ray runs), pinned by uv.lock.
RUN uv export --frozen --no-dev --no-emit-workspace --package dlens-ingest -o /tmp/requirements.txt \
    && uv pip install --system --no-cache -r /tmp/requirements.txt \
    && uv pip install --system --no-cache --no-deps ./libs/common ./services/ingest
USER ray
ENTRYPOINT []
CMD ["dlens-ingest", "--help"]
