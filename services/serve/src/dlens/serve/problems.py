"""Request problems as HTTP errors: raised anywhere a request is checked, answered as 4xx JSON."""

from __future__ import annotations


class RequestProblem(ValueError):
    """What is wrong with a request, and the HTTP status that says so."""

    def __init__(self, status: int, detail: str):
        super().__init__(detail)
        self.status, self.detail = status, detail


def unprocessable(detail: str) -> RequestProblem:
    """A well-formed request whose content cannot be used (422)."""
    return RequestProblem(422, detail)
