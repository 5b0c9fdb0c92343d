"""docs/benchmarks.md keeps up with `make bench`: every benchmark script runs in `make bench`
(bench/run_all.py), and each has its section with the command to rerun it, the machine and the date
it was measured."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from dlens.testing.scripts import load_script

REPO = Path(__file__).resolve().parents[1]
DOC = (REPO / "docs" / "benchmarks.md").read_text()


def run_all_benchmarks() -> dict[str, list[str]]:
    return load_script(REPO / "bench" / "run_all.py").BENCHMARKS


def sections() -> dict[str, str]:
    """The doc's sections by the script their title names: '## Title (`bench/x.py`)'."""
    parts = re.split(r"^## ", DOC, flags=re.MULTILINE)[1:]
    return {
        m.group(1): part for part in parts if (m := re.search(r"\(`(bench/\w+\.py)`\)", part.splitlines()[0]))
    }


def test_make_bench_runs_every_benchmark():
    scripts = {p.relative_to(REPO).as_posix() for p in (REPO / "bench").glob("*.py")} - {"bench/run_all.py"}
    assert {argv[0] for argv in run_all_benchmarks().values()} == scripts
    dry_run = subprocess.run(["make", "-n", "bench"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "bench/run_all.py" in dry_run.stdout


def test_every_benchmark_has_its_command_machine_and_date():
    documented = sections()
    for name, argv in run_all_benchmarks().items():
        script = argv[0]
        assert script in documented, f"docs/benchmarks.md has no section for {script} ({name})"
        text = documented[script]
        assert re.search(rf"```bash\n[^`]*{re.escape(script)}", text), f"{script}: no command to rerun it"
        assert re.search(r"2 CPUs", text), f"{script}: the machine is not named"
        assert re.search(r"\b20\d\d-\d\d-\d\d\b", text), f"{script}: no date"
