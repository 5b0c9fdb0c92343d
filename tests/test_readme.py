"""The README's commands, copied as written, are real: every `make` line names targets and variables the
Makefile runs (`make -n`), every `uv run dlens-…` line parses with that CLI's own parser, every script
it runs exists. (`make demo` itself runs end to end in tests/test_demo_clone.py.)"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from dlens.evaluate.cli import build_parser as evaluate_parser
from dlens.ingest.cli import build_parser as ingest_parser
from dlens.serve.cli import build_parser as serve_parser
from dlens.train.cli import build_parser as train_parser

REPO = Path(__file__).resolve().parents[1]
PARSERS = {"dlens-ingest": ingest_parser, "dlens-train": train_parser, "dlens-evaluate": evaluate_parser,
           "dlens-serve": serve_parser}  # fmt: skip


def readme_commands() -> list[list[str]]:
    """Each command line of the README's bash blocks (continuations joined, comments dropped)."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


COMMANDS = readme_commands()


def test_the_readme_has_its_commands():
    assert COMMANDS[0] == ["make", "demo"] and COMMANDS[1] == ["make", "test"]
    assert sum(argv[:2] == ["uv", "run"] for argv in COMMANDS) >= 10


@pytest.mark.parametrize("argv", [a for a in COMMANDS if a[0] == "make"], ids=shlex.join)
def test_make_lines_dry_run(argv):
    done = subprocess.run(["make", "-n", *argv[1:]], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("argv", [a for a in COMMANDS if a[:2] == ["uv", "run"]], ids=shlex.join)
def test_uv_run_lines_parse(argv):
    program, *args = argv[2:]
    if program == "python":
        assert (REPO / args[0]).is_file()
        return
    PARSERS[program]().parse_args(args)
