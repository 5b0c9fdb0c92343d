"""Headless Chromium for the tests of pages a person looks at (the report, the serve viewer).

Debian's Chromium (`apt-get install chromium`, which `make test` does) driven by Playwright's
Python client; no browser is downloaded. Where Chromium is missing the test is skipped with that
reason, except under CI (``CI`` set), where it is a failure.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a sandbox without network: no background connections, no first-run work.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parents[5] / "test-artifacts"

_IMAGES_JS = (
    "Array.from(document.images).map(i => ({src: i.getAttribute('src'), complete: i.complete,"
    " width: i.naturalWidth, alt: i.alt}))"
)


def require_chromium() -> Path:
    """Debian's Chromium; skip the test where it is missing (fail under CI)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} not found (apt-get install chromium); the page cannot be rendered"
        if os.environ.get("CI"):
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def served_directory(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 from a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class RenderedPage:
    """What a page showed: its images (src, complete, width, alt) and its address once drawn."""

    images: list[dict]
    url: str


def render_page(url: str, screenshot: Path, profile: Path, visible: str | None = None) -> RenderedPage:
    """Load `url` in headless Chromium and save a full-page screenshot; return its images and address.

    Fails when the page does not load, a request fails, an image is broken or has no alt text, or
    the CSS selector `visible` is not visible within 60 s.
    """
    chromium = require_chromium()
    from playwright.sync_api import sync_playwright

    failed: list[str] = []
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile), executable_path=str(chromium), args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.on("requestfailed", lambda request: failed.append(request.url))
            response = page.goto(url, wait_until="load")
            assert response is not None and response.ok, f"{url} did not load"
            if visible:  # a page that draws after loading (the serve viewer) gets 60 s to show it
                page.locator(visible).first.wait_for(state="visible", timeout=60_000)
            images = page.evaluate(_IMAGES_JS)
            location = page.url
            broken = [i["src"] for i in images if not (i["complete"] and i["width"] > 0)]
            assert not broken, f"images that did not load: {broken}"
            assert all(i["alt"] for i in images), "an image has no alt text"
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            context.close()
    assert not failed, f"failed requests: {failed}"
    return RenderedPage(images, location)
