"""The report as a forecaster sees it: rendered in headless Chromium (Debian's, no browser download).

The page is served over HTTP on 127.0.0.1 (as from an object store), every image must load, the
scorecard must be visible, and a full-page screenshot lands in test-artifacts/report.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import report_factory as F

from dlens.evaluate.report import write_report
from dlens.testing.browser import ARTIFACTS, render_page, served_directory


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    write_report(F.make_metrics(), F.make_maps(), tmp_path / "report", progress=False)
    with served_directory(tmp_path / "report") as base:
        images = render_page(
            f"{base}/index.html", ARTIFACTS / "report.png", tmp_path / "profile", visible="table.scorecard"
        ).images
    assert len(images) == 6  # two species × (lead-time plot, maps, station maps)
    assert (ARTIFACTS / "report.png").stat().st_size > 0
