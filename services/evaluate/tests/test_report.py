"""The HTML verification report: files written, escaping, missing data, offline coastlines."""

from __future__ import annotations

import json
import math
import socket
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

sys.path.insert(0, str(Path(__file__).parent))
import report_factory as F

from dlens.evaluate.report import write_report
from dlens.evaluate.report.coastlines import _cached, coastline_segments
from dlens.evaluate.report.records import json_ready
from dlens.evaluate.report.tables import best_flags

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Collects the images, links and script tags of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str | None]] = []
        self.links: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag in ("a", "link") and a.get("href"):
            self.links.append(a["href"])
        elif tag == "script":
            self.scripts += 1


def parse(index: Path) -> tuple[str, _Page]:
    text = index.read_text(encoding="utf-8")
    page = _Page()
    page.feed(text)
    return text, page


def assert_images_exist(index: Path, page: _Page) -> None:
    assert page.images, "the page shows no figure"
    for img in page.images:
        src = img["src"]
        assert src and src.startswith("figures/"), f"image not linked relatively: {src}"
        path = index.parent / src
        assert path.is_file(), f"missing figure {src}"
        assert path.stat().st_size > 1000
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        assert img.get("alt"), f"image {src} has no alt text"


@pytest.fixture(scope="module")
def factory_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, xr.Dataset, Path]:
    metrics, maps = F.make_metrics(), F.make_maps()
    out = tmp_path_factory.mktemp("report")
    index = write_report(metrics, maps, out, progress=False)
    return metrics, maps, index


def test_report_files(factory_report: tuple[dict, xr.Dataset, Path]) -> None:
    metrics, maps, index = factory_report
    out = index.parent
    assert index == out / "index.html"
    text, page = parse(index)
    assert_images_exist(index, page)
    assert len(page.images) == 6  # per species: lead-time plot, maps and station maps
    assert page.scripts == 0
    assert not [h for h in page.links if "://" in h], "the page must not reach outside its directory"
    assert "<link" not in text and "@import" not in text and "url(" not in text
    for expected in ("2025-07-01", "s3://dlens-demo/alps.zarr", "0.1.0+g1234abc", "dlens-abc123", "silam"):
        assert expected in text
    for section in (
        "Summary scorecard",
        "Scores by lead block",
        "Regions",
        "Seasons",
        "Threshold exceedances",
        "At stations",
    ):
        assert section in text

    stored = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert stored == json_ready(metrics)
    assert math.isnan(metrics["continuous"][3]["r"]) and stored["continuous"][3]["r"] is None
    assert stored["continuous"][3]["rmse"] == metrics["continuous"][3]["rmse"]

    with xr.open_dataset(out / "maps.nc") as back:
        xr.testing.assert_equal(back.load(), maps)
        assert back.attrs["reference"] == "median"


def test_scorecard_colours_follow_verdicts(factory_report: tuple[dict, xr.Dataset, Path]) -> None:
    metrics, _, index = factory_report
    text = index.read_text(encoding="utf-8")
    summary = text[text.index('id="summary"') : text.index('class="species"')]
    verdicts = [r["verdict"] for r in metrics["significance"]]
    for verdict, css in (("better", "better"), ("worse", "worse"), ("not significant", "not-significant")):
        cells = summary.count(f'<td class="sc {css}"')
        assert cells == verdicts.count(verdict), verdict
    assert verdicts.count("better") > 0
    first_grid = summary[summary.index('class="scorecard"') :]
    assert first_grid.index("dlens-abc123") < first_grid.index("weighted")  # DL-ENS first


def test_product_names_are_escaped(tmp_path: Path) -> None:
    evil = "dlens-<script>alert(1)</script>"
    odd = "mean & $x^2$"
    products = ("median", odd, evil, "chimere", "emep")
    index = write_report(F.make_metrics(products), F.make_maps(products), tmp_path, progress=False)
    text, page = parse(index)
    assert "<script>" not in text and page.scripts == 0
    assert "dlens-&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "mean &amp; $x^2$" in text
    assert_images_exist(index, page)
    assert all("<" not in p.name for p in (tmp_path / "figures").iterdir())


def test_all_nan_maps_and_missing_pieces(tmp_path: Path) -> None:
    metrics, maps = F.make_metrics(), F.make_maps()
    maps["rmse"].loc[{"product": F.DLENS}] = np.nan  # one product without any map
    maps = maps.sel(species=["o3"])  # no maps at all for no2
    metrics["significance"] = []
    metrics["meta"]["species"].append("so2")  # listed, yet no record and no map
    metrics["exceedance"] = [r for r in metrics["exceedance"] if r["species"] != "no2"]
    index = write_report(metrics, maps, tmp_path, progress=False)
    text, page = parse(index)
    assert_images_exist(index, page)
    summary = text[text.index('id="summary"') : text.index('class="species"')]
    assert "no data" in summary
    so2 = text[text.index("so2 — sulphur dioxide") :]
    assert so2.count('class="nodata"') >= 5 and "<img" not in so2
    no2 = text[text.index("no2 — nitrogen dioxide") : text.index("so2 — sulphur dioxide")]
    assert no2.count("<img") == 1  # the lead-time plot; the maps say "no data"


def test_metrics_of_an_older_version_render_without_the_newer_scores(tmp_path: Path) -> None:
    metrics, maps = F.make_metrics(), F.make_maps()
    for row in metrics["continuous"]:
        del row["variance_ratio"]  # metrics.json written before the variance ratio existed
    text, _ = parse(write_report(metrics, maps, tmp_path, progress=False))
    assert "σ ratio" not in text and "RMSE" in text
    assert "σ ratio" in parse(write_report(F.make_metrics(), maps, tmp_path / "new", progress=False))[0]


def test_newer_scores_are_shown_as_numbers(factory_report: tuple[dict, xr.Dataset, Path]) -> None:
    metrics, _, index = factory_report
    text, _ = parse(index)
    o3 = text[text.index("o3 — ozone") : text.index("no2 — nitrogen dioxide")]
    dlens_row = {r["lead_block"]: r for r in metrics["continuous"] if r["product"] == F.DLENS
                 and r["species"] == "o3" and r["lead"] is None and r["region"] == "domain" and r["season"] == "all"}  # fmt: skip
    for key in ("variance_ratio", "rmse_top5"):
        shown = f"{dlens_row['all'][key]:.3f}" if key == "variance_ratio" else f"{dlens_row['all'][key]:.2f}"
        assert shown.replace("-", "−") in o3, key  # a number in the cell, not a dash
    assert "RMSE top 5 %" in o3 and "SEDI" in o3 and "FSS 5×5" in o3 and "SS persistence" in o3
    assert "SS climatology" not in o3  # not scored against climatology: no empty column
    mda8 = o3[o3.index("Maximum daily 8-hour mean") : o3.index("Threshold exceedances")]
    (row,) = [r for r in metrics["mda8"] if r["product"] == F.DLENS and r["lead_block"] == "all"]
    assert f"{row['rmse']:.2f}" in mda8
    assert "Maximum daily 8-hour mean" not in text[text.index("no2 — nitrogen dioxide") :]


def test_station_section_shows_every_set(factory_report: tuple[dict, xr.Dataset, Path]) -> None:
    metrics, _, index = factory_report
    text, _ = parse(index)
    no2 = text[text.index("no2 — nitrogen dioxide") :]
    section = no2[no2.index("<h3>At stations</h3>") :]
    for name, count in F.STATION_COUNTS.items():
        assert f">{name} ({count})</th>" in section, name
    (row,) = [r for r in metrics["stations"] if r["product"] == F.DLENS and r["species"] == "no2"
              and r["lead_block"] == "all" and r["stations"] == "withheld"]  # fmt: skip
    assert f"{row['rmse']:.2f}" in section
    assert "RMSE by lead block, all stations" in section and 'src="figures/stations-01-no2.png"' in section


def test_empty_metrics(tmp_path: Path) -> None:
    index = write_report({}, xr.Dataset(), tmp_path, progress=False)
    text = index.read_text(encoding="utf-8")
    assert "no data" in text
    assert json.loads((tmp_path / "metrics.json").read_text()) == {}


def test_no_network_access(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("write_report tried to open a network connection")

    _cached.cache_clear()  # draw the coastlines again, under the patch
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    index = write_report(F.make_metrics(), F.make_maps(), tmp_path, progress=False)
    assert_images_exist(index, parse(index)[1])


def test_coastlines_offline_and_fast() -> None:
    coastline_segments(42.0, 48.4, 5.0, 14.6)  # the land mask loads once per process
    start = time.perf_counter()
    segments = coastline_segments(36.0, 46.0, 6.0, 19.0)  # Italy: a new extent
    assert time.perf_counter() - start < 1.0
    assert sum(len(s) for s in segments) > 1000
    points = np.concatenate(segments)
    assert points[:, 0].min() >= 6.0 - 1e-6 and points[:, 0].max() <= 19.0 + 1e-6
    assert points[:, 1].min() >= 36.0 - 1e-6 and points[:, 1].max() <= 46.0 + 1e-6
    assert coastline_segments(36.0, 46.0, 6.0, 19.0) is segments  # cached
    assert coastline_segments(35.0, 35.5, 18.0, 18.5) == ()  # open sea
    assert coastline_segments(50.0, 50.5, 10.0, 10.5) == ()  # inland Germany


def test_progress_bar(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics, maps = F.make_metrics(species=("o3",)), F.make_maps(species=("o3",))
    write_report(metrics, maps, tmp_path / "quiet", progress=False)
    assert "report figures" not in capsys.readouterr().err
    write_report(metrics, maps, tmp_path / "shown", progress=True)
    assert "report figures" in capsys.readouterr().err


def test_best_flags() -> None:
    assert best_flags([3.0, 1.0, 2.0], "min") == [False, True, False]
    assert best_flags([-0.5, 0.2, float("nan")], "absmin") == [False, True, False]
    assert best_flags([0.8, 0.9, 0.9], "max") == [False, True, True]
    assert best_flags([0.0, 0.0], "max") == [False, False]  # all tied: nothing stands out
    assert best_flags([1.0, None], "min") == [False, False]  # fewer than two values
    assert best_flags([1.0, 2.0], None) == [False, False]
