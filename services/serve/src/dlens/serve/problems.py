"""Request problems as HTTP errors: raised anywhere a request is checked, answered as JSON `{"detail": ...}`
with their status (4xx; 503 while the store is unreachable)."""

from __future__ import annotations

import math


class RequestProblem(ValueError):
    """What is wrong with a request, and the HTTP status that says so (and its headers, if any)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers

    def __reduce__(self):  # pickled back from a worker process (dlens.serve.workers), as a RequestProblem
        return RequestProblem, (self.status, self.detail, self.headers)


class StoreUnavailable(RequestProblem):
    """The store does not answer and nothing the replica keeps can answer instead (503, Retry-After)."""

    def __init__(self, detail: str, retry_after_s: float):
        super().__init__(503, detail, {"Retry-After": str(max(1, math.ceil(retry_after_s)))})


def unprocessable(detail: str) -> RequestProblem:
    """A well-formed request whose content cannot be used (422)."""
    return RequestProblem(422, detail)
