"""The one error type every reader raises for a bad input file."""

from __future__ import annotations


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace/newlines and cap the length, so a message is always one short line."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class IngestError(Exception):
    """A bad input file. ``str(e)`` is one line: ``"<file name>: <what is wrong>"``."""

    def __init__(self, source: str, problem: str) -> None:
        self.source = one_line(source, 200)
        self.problem = one_line(problem)
        super().__init__(f"{self.source}: {self.problem}")

    def __reduce__(self):  # picklable (Ray tasks send errors between processes)
        return (type(self), (self.source, self.problem))


class Problem(Exception):
    """Raised inside the readers where the file name is not known; turned into an IngestError."""
