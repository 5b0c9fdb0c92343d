"""`retrieve` with the real cdsapi client against a local ADS stand-in (http.server in a thread) whose
first download breaks off midway: the rerun downloads again and keeps the whole file."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from dlens.common.grid import parse_domain
from dlens.ingest.fetch import build_requests, retrieve

PAYLOAD = bytes(range(256)) * 400  # 100 kB, what the ADS answers to every request


class AdsStandIn(BaseHTTPRequestHandler):
    """The legacy CDS API: a request completes at once; its result is served from /result, cut off
    after half its bytes while `cut` is set."""

    cut = True

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        port = self.server.server_address[1]
        self.answer(
            200,
            json.dumps({
                "state": "completed", "request_id": "1", "location": f"http://127.0.0.1:{port}/result",
                "content_length": len(PAYLOAD),
            }).encode(),
        )  # fmt: skip

    def do_GET(self) -> None:
        if self.path != "/result":
            self.answer(404, b"{}")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD)))
        self.end_headers()
        self.wfile.write(PAYLOAD[: len(PAYLOAD) // 2] if AdsStandIn.cut else PAYLOAD)
        self.close_connection = True

    def do_DELETE(self) -> None:
        self.answer(204, b"")

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def ads(monkeypatch, tmp_path) -> Iterator[None]:
    AdsStandIn.cut = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), AdsStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CDSAPI_RC", raising=False)
    monkeypatch.setenv("CDSAPI_URL", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("CDSAPI_KEY", "1:key")  # UID:KEY selects cdsapi's own (legacy) client
    yield
    server.shutdown()
    server.server_close()


def test_an_interrupted_download_is_fetched_again(ads, tmp_path):
    request = build_requests(date(2025, 3, 1), 1, ["o3"], [0], [0], parse_domain("tiny"))[:1]
    target = tmp_path / "ads" / request[0].target
    with pytest.raises(requests.exceptions.ChunkedEncodingError):  # the connection closed midway
        retrieve(request, tmp_path / "ads")
    assert not target.exists()  # the half that arrived is only a .part
    AdsStandIn.cut = False
    assert retrieve(request, tmp_path / "ads") == [target]
    assert target.read_bytes() == PAYLOAD
    assert [p.name for p in target.parent.iterdir()] == [target.name]
