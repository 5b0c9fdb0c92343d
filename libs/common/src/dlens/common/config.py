"""One source of truth for DL-ENS configuration: environment (prefix ``DLENS_``), then defaults.

Command-line flags override these values; a flag left unset never overrides a value set in the
environment (the CLI passes only the flags the user gave).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from dlens.common.logging import setup_logging


class Settings(BaseSettings):
    """DL-ENS settings, read from ``DLENS_*`` environment variables."""

    model_config = SettingsConfigDict(env_prefix="DLENS_", extra="ignore")

    store: str = Field("data/store.zarr", description="Store root: a local path or s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(
        None, description="S3 endpoint; when unset the standard AWS_ENDPOINT_URL applies"
    )
    s3_timeout_s: float = Field(
        10.0, gt=0, description="S3: seconds a request may take to connect, and to each read of its answer"
    )
    s3_attempts: int = Field(
        3,
        ge=1,
        le=10,
        description="S3: attempts of each request the endpoint refused, dropped or let time out, the first "
        "included (botocore's standard retries); then the command stops with `store unreachable` (a Serve "
        "replica has its own, store_timeout_s and store_attempts)",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster address; when unset RAY_ADDRESS applies, else a local Ray starts"
    )
    domain: str = Field("demo", description="Named domain (full, demo, tiny) or S,N,W,E")
    leads: str = Field("0:96:3", description="Lead hours kept in the store, start:stop:step inclusive")
    levels: str = Field("0", description="Comma-separated levels in metres kept in the store")
    seed: int = Field(0, description="Synthetic generator seed")
    compressor: Literal["zstd", "lz4", "none"] = Field(
        "zstd", description="Lossless codec of the store's arrays (blosc with byte shuffle)"
    )
    compression_level: int = Field(1, ge=0, le=9, description="Codec level: higher is smaller and slower")
    lock_expiry_hours: float = Field(
        24.0,
        gt=0,
        description="Store lock: hours after which a writing command's lock may be taken over by another "
        "writer (keep it above the longest ingest)",
    )
    inference_tile: int = Field(
        0,
        ge=0,
        description="Inference (predict, serve): run the model on overlapping tiles of N×N cells, blended, "
        "for fields larger than memory allows at once (0: the whole field at once)",
    )
    inference_overlap: int = Field(
        32, ge=0, description="Inference on tiles: cells by which neighbouring tiles overlap at least"
    )
    inference_batch_cells: int = Field(
        2**19,
        ge=1,
        description="Inference (predict): the most cells (leads × rows × columns) one forward pass takes, "
        "at least one lead: bounds memory on large grids (one full-grid lead at the default)",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR")
    progress: bool = Field(True, description="Show progress bars on long work")
    weight_window_days: int = Field(
        7, ge=1, description="Weighted ENSEMBLE: trailing days of member skill behind the weights"
    )
    reference_window_days: int = Field(
        28,
        ge=1,
        description="Climatology, MOS and EMOS: trailing days of analyses they average or are fitted on",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token the serve endpoint requires on every route but /, /healthz, /readyz and "
        "the API description: 8+ letters, digits or -._~+/ (`openssl rand -hex 32`); never logged. Unset or "
        "empty: a Serve replica refuses to start unless anonymous access is allowed (`dlens-serve run` on "
        "loopback allows it)",
    )
    allow_anonymous: bool = Field(
        False,
        description="Serve without a bearer token where none is set: anyone who reaches the endpoint may "
        "call it (docs/security.md)",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        description="MLflow tracking of fits and sweeps: a server's http(s):// URL or file:DIR; when unset "
        "MLFLOW_TRACKING_URI applies, else a local file store under data/mlruns",
    )
    mlflow_experiment: str = Field("dlens", description="MLflow experiment every fit and sweep trial logs to")
    bootstrap_resamples: int = Field(1000, ge=100, description="Bootstrap resamples for confidence intervals")
    bootstrap_block_runs: int = Field(
        4,
        ge=1,
        description="Moving-block bootstrap: consecutive runs resampled together (4, the days a 96-h "
        "forecast spans: runs whose forecasts overlap in valid time stay together; 1: the plain bootstrap)",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (environment read once)."""
    return Settings()


def cli_settings(log_level: str | None, no_progress: bool) -> Settings:
    """The settings with a command line's `--log-level` / `--no-progress` applied, logging set up."""
    settings = get_settings()
    if no_progress:
        settings.progress = False
    setup_logging(log_level or settings.log_level)
    return settings
