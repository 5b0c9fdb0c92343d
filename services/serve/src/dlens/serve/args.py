"""The serve application's settings: `dlens-serve run` flags and the `args:` of infra/serve/config.yaml."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class ServeArgs(BaseModel):
    """What the application serves and its limits (one source: the CLI and the Serve config file build it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str = Field(
        description="Store root holding the registry and the members: a local path or s3:// URL"
    )
    model: str = Field("latest", description="Default model id (or latest) when a request names none")
    bundles: tuple[str, ...] = Field(
        (),
        description="Model bundles (dlens-train export: directories or s3:// prefixes) served beside the "
        "registry's models, which need not hold them",
    )
    max_body_mb: float = Field(
        64.0,
        gt=0,
        description="Largest request body accepted (413 above, before it is read); a replica lowers it to "
        "what a JSON request of every species and member on its store's domain takes",
    )
    max_ongoing_requests: int = Field(
        64, ge=1, description="Requests a replica works on at once (each holds its body in memory)"
    )
    max_queued_requests: int = Field(
        128, ge=1, description="Requests each proxy queues for the deployment beyond those (503 above)"
    )
    max_parsing: int = Field(
        2,
        ge=1,
        description="Request bodies a replica parses at once (JSON takes ~16× its size as Python objects "
        "until its fields are arrays)",
    )
    static_cache_size: int = Field(
        16, ge=1, description="Static-field sets (channels × domain) a replica keeps, the most recently used"
    )
    unknown_model_ttl_s: float = Field(
        10.0,
        ge=0,
        description="Seconds an id missing from the registry is answered 404 from the last read of it, "
        "without rereading it",
    )
    max_batch_size: int = Field(
        8, ge=1, le=256, description="Dynamic batching: most samples per forward pass"
    )
    batch_wait_timeout_s: float = Field(
        0.0, ge=0, description="Dynamic batching: longest wait to fill a batch"
    )
    reader_refresh_s: float = Field(30.0, ge=0, description="Seconds before the store's run index is reread")
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required on every route but /, /healthz, /readyz and the API description "
        "(unset: DLENS_API_TOKEN of the replica; empty: no auth)",
    )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024**2)
