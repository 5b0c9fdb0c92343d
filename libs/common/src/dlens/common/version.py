"""The version of the running code, recorded with reports and models."""

from __future__ import annotations

import subprocess
from importlib.metadata import version
from pathlib import Path


def code_version(package: str) -> str:
    """The git commit of the checkout, or `package`'s installed version outside one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).parent, check=True,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return f"{package} {version(package)}"
