"""ASGI guards in front of every route: request bodies bounded in size (the bound derived from the store's
domain), bearer-token auth on every route but the public ones."""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from dlens.common.species import MEMBERS, SPECIES

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Routes anyone may call when a token is set: liveness and readiness probes, the viewer page (it asks for
#: the token itself) and the API's description.
PUBLIC_ROUTES = frozenset({"/", "/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})

#: Bytes a JSON request spends on one value at most: a float64 written out in full (up to 24 characters), its
#: separator and a pretty-printer's indentation.
JSON_BYTES_PER_VALUE = 48
#: Bytes of a request besides its fields: keys, member names, run, lead, domain.
REQUEST_OVERHEAD = 64 * 1024


def body_limit(cap: int, shape: tuple[int, int], predictor_fields: int = 0) -> int:
    """The largest body worth reading for a store whose domain has this shape, under `cap`: a JSON request of
    every species and member on the whole domain, and the `predictor_fields` the most demanding model served
    reads (a request's domain lies inside the store's; NetCDF takes less). A larger body cannot be a request,
    and parsing it would cost ~16× its size."""
    values = (len(SPECIES) * len(MEMBERS) + predictor_fields) * shape[0] * shape[1]
    return min(cap, values * JSON_BYTES_PER_VALUE + REQUEST_OVERHEAD)


class BodyTooLarge(Exception):
    pass


async def _problem(send: Send, status: int, detail: str, headers: list | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def route_of(scope: Scope) -> str:
    """The request's path within the application: without the prefix it is mounted under (`root_path`)."""
    path, root = scope["path"], scope.get("root_path", "").rstrip("/")
    if root and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return path or "/"


class Guard:
    """Refuse bodies over `max_bytes()` (413, before reading them where Content-Length says so) and, when
    `token` is set, requests to any route but :data:`PUBLIC_ROUTES` without `Authorization: Bearer <token>`
    (401). The route is read without the application's prefix, so a prefix cannot hide one. The limit is
    asked for each request (it falls once the store's domain is known) and must not block."""

    def __init__(self, app: ASGIApp, max_bytes: Callable[[], int], token: str | None):
        self.app, self.max_bytes, self.token = app, max_bytes, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token and route_of(scope) not in PUBLIC_ROUTES and not self._authorised(headers):
            await _problem(send, 401, "missing or wrong bearer token: send Authorization: Bearer <token>",
                           [(b"www-authenticate", b"Bearer")])  # fmt: skip
            return
        max_bytes = self.max_bytes()
        too_large = f"request body over the limit of {max_bytes} bytes"
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > max_bytes:
            await _problem(send, 413, too_large)
            return
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await _problem(send, 413, too_large)

    def _authorised(self, headers: dict[str, str]) -> bool:
        """The header's bytes (decoded as latin-1 above) against the token's UTF-8 bytes: any byte is a
        wrong token, never an error."""
        scheme, _, given = headers.get("authorization", "").partition(" ")
        expected = (self.token or "").encode()
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("latin-1"), expected)
