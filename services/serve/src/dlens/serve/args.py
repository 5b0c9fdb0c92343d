"""The serve application's settings: `dlens-serve run` flags and the `args:` of infra/serve/config.yaml;
the bearer token its replicas require."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from dlens.common.config import Settings

#: What a bearer token must look like: RFC 6750's b64token (what `Authorization: Bearer` can carry, no
#: space or newline), at least 8 characters before any trailing `=`.
TOKEN_FORM = re.compile(r"[A-Za-z0-9._~+/-]{8,}=*")


def required_token(token: SecretStr | None, allow_anonymous: bool) -> SecretStr | None:
    """The bearer token to require: `token`, or None (no auth) where it is unset or empty and anonymous
    access is allowed. ValueError in one line, never holding the token, otherwise."""
    value = token.get_secret_value() if token else ""
    if value and not TOKEN_FORM.fullmatch(value):
        raise ValueError(
            "DLENS_API_TOKEN is not a usable bearer token (8+ letters, digits or -._~+/, then any '='; "
            "a placeholder?): generate one with `openssl rand -hex 32`"
        )
    if not value and not allow_anonymous:
        raise ValueError(
            "no API token: set DLENS_API_TOKEN where the replicas run (`openssl rand -hex 32`), or allow "
            "anonymous access explicitly (DLENS_ALLOW_ANONYMOUS=true or args.allow_anonymous: true)"
        )
    return token if value else None


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
        "what a JSON request of every species and member (and the predictors its models read) on its store's "
        "domain takes",
    )
    num_replicas: int | None = Field(
        None,
        ge=1,
        description="Replicas of the deployment, a fixed number (unset: one, or what the Serve config's "
        "deployments entry sets; leave it unset with an autoscaling_config)",
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
    max_netcdf_memory_mb: float = Field(
        1024.0,
        gt=0,
        description="Memory a NetCDF body may take as it is read (413 above): each of the max_parsing worker "
        "processes that read them is limited (RLIMIT_AS, Linux) to this much address space beyond its own",
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
    store_timeout_s: float = Field(
        5.0,
        gt=0,
        description="S3 store: seconds a request may take to connect, and to each read of its answer",
    )
    store_attempts: int = Field(
        2, ge=1, le=10, description="S3 store: attempts of each request, the first included, before it fails"
    )
    store_retry_s: float = Field(
        5.0,
        ge=0,
        description="Seconds before a store that failed is tried again: meanwhile requests are answered from "
        "the last registry and run index read, or 503",
    )
    api_token: SecretStr | None = Field(
        None,
        description="Bearer token required on every route but /, /healthz, /readyz and the API description "
        "(unset: DLENS_API_TOKEN of the replica; empty: none, which needs allow_anonymous)",
    )
    allow_anonymous: bool | None = Field(
        None,
        description="Serve without a bearer token where none is set (unset: DLENS_ALLOW_ANONYMOUS of the "
        "replica); otherwise a replica without a token refuses to start",
    )

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024**2)

    def bearer_token(self, settings: Settings) -> SecretStr | None:
        """The token a replica requires, from these args or else its environment (`settings`): see
        :func:`required_token`."""
        token = self.api_token if self.api_token is not None else settings.api_token
        allow = self.allow_anonymous if self.allow_anonymous is not None else settings.allow_anonymous
        return required_token(token, allow)
