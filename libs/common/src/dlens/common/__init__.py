"""DL-ENS shared library.

Ray's `uv run` hook is turned off here, before any service imports Ray (Ray reads it on import):
workers run in this same environment (the local venv, or the service image on a cluster), and the
hook would instead package the working directory, data included, for every job.
"""

import os

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
