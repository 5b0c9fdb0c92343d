"""The report as a forecaster sees it: rendered in headless Chromium (Debian's, no browser download).

The page is served over HTTP on 127.0.0.1 (as from an object store), every image must load, the
scorecard must be visible, and a full-page screenshot lands in test-artifacts/report.png.
"""

from __future__ import annotations

import functools
import os
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import report_factory as F

from dlens.evaluate.report import write_report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPOSITORY = Path(__file__).resolve().parents[3]
ARTIFACTS = REPOSITORY / "test-artifacts"


def require_chromium() -> Path:
    """Debian's Chromium; skipped where it is missing, a failure under CI (CI set)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install chromium); the report cannot be rendered"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served_report(tmp_path: Path) -> Iterator[str]:
    """The factory report written to tmp_path and served on 127.0.0.1; yields the index URL."""
    write_report(F.make_metrics(), F.make_maps(), tmp_path / "report", progress=False)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path / "report"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_report_renders_in_chromium(served_report: str, tmp_path: Path) -> None:
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            response = page.goto(served_report, wait_until="load")
            assert response is not None and response.ok
            images = page.evaluate(
                "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
                " width: i.naturalWidth, alt: i.alt}))"
            )
            assert len(images) == 4  # two species × (lead-time plot, maps)
            broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
            assert not broken, f"images that did not load: {broken}"
            assert all(i["alt"] for i in images)
            scorecard = page.locator("table.scorecard").first
            assert scorecard.is_visible()
            assert "dlens-abc123" in scorecard.inner_text()
            assert page.locator("td.sc.better").count() > 0
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            context.close()
    assert not failed, f"failed requests: {failed}"
    assert (ARTIFACTS / "report.png").stat().st_size > 0
