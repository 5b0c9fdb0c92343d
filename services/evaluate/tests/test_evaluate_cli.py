"""`dlens-evaluate` end to end on a store whose member skills are known (a local Ray, real files)."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr
from numpy.lib.stride_tricks import sliding_window_view
from scipy.stats import spearmanr

from dlens.common.layout import Status
from dlens.common.lock import acquire, read_lock, release
from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.common.species import EARLY_MEMBERS, MEMBERS, SPECIES_NAMES
from dlens.common.store import open_dataset
from dlens.evaluate.cli import main
from dlens.evaluate.regions import partition_for, regions_for
from dlens.testing.browser import ARTIFACTS, render_page, served_directory
from dlens.testing.mock_store import MockSkill, build_mock_store

START = datetime(2025, 3, 1)
ARGS = ["--no-progress", "--start", "2025-03-09", "--days", "6", "--resamples", "400"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, ray_cluster) -> tuple[str, Path, dict]:
    """A 14-day mock store, evaluated on its last 6 days with every baseline, both references and every
    member."""
    root = tmp_path_factory.mktemp("evaluate")
    store = str(root / "mock.zarr")
    build_mock_store(store, START, days=14)
    out = root / "report"
    assert main([*ARGS, "--store", store, "--products", "median,weighted,weighted-regions,mean,best-member,median-early,persistence,climatology,members",
                 "--compare-to", "weighted", "--out", str(out)]) == 0  # fmt: skip
    return store, out, json.loads((out / "metrics.json").read_text())


def test_references_are_built_from_the_analyses_before_the_run(evaluated):
    """Persistence repeats the analysis of the 24 h before the run; climatology averages each hour of day
    over the trailing window (here the 8 days the store holds before 2025-03-09); both are scored."""
    store, _, metrics = evaluated
    reader = StoreReader(store)
    run = np.datetime64("2025-03-09T00", "h")
    for lead in (0, 12, 36, 96):
        past = [reader.analysis("o3", run - np.timedelta64(24 * d - lead % 24, "h")) for d in range(1, 9)]
        assert reader.analysis("o3", run - np.timedelta64(24 * 9 - lead % 24, "h")) is None
        np.testing.assert_array_equal(reader.product("persistence", "o3", run, lead), past[0])
        expected = (np.sum([p.astype(np.float64) for p in past], axis=0) / 8).astype(np.float32)
        np.testing.assert_array_equal(reader.product("climatology", "o3", run, lead), expected)
    attrs = zarr.open_group(store, mode="r")["products/climatology"].attrs
    assert attrs["reference_window_days"] == 28 and "hour of day" in attrs["description"]
    rmse = overall(metrics)
    assert {"persistence", "climatology"} <= set(rmse.index)
    assert (rmse.loc["persistence"] > rmse.loc["median"]).all()  # the mock's members know each day's level


def test_a_reference_without_analyses_before_the_run_is_absent(tmp_path, ray_cluster):
    from dlens.evaluate.baselines import ensure_baselines

    store = str(tmp_path / "mock.zarr")
    build_mock_store(store, START, days=3, leads=(0, 24))
    first, third = np.datetime64("2025-03-01T00", "h"), np.datetime64("2025-03-03T00", "h")
    done = ensure_baselines(store, [first, third], ["persistence", "climatology"], 7, reference_days=1)
    assert not done.failed and done.computed == {"persistence": 2, "climatology": 2}
    reader = StoreReader(store)
    for name in ("persistence", "climatology"):
        assert reader.product_status(name, "no2", first) == Status.ABSENT
        assert reader.product_status(name, "no2", third) == Status.COMPLETE
    np.testing.assert_array_equal(  # a window of one day is persistence
        reader.product("climatology", "no2", third, 24), reader.product("persistence", "no2", third, 24)
    )


def test_skill_scores_against_the_median_and_the_references(evaluated):
    """skill_<ref> = 1 − (RMSE / RMSE_ref)² in every record, the reference's own row 0."""
    _, _, metrics = evaluated
    rows = pd.DataFrame(metrics["continuous"])
    key = ["species", "level", "lead_block", "region", "season"]
    blocks = rows[rows["lead"].isna()].set_index(["product", *key]).sort_index()
    for ref in ("median", "persistence", "climatology"):
        theirs = blocks.loc[ref, "rmse"]
        for product in ("weighted", "mean", ref):
            own = blocks.loc[product]
            expected = 1 - (own["rmse"] / theirs.reindex(own.index)) ** 2
            np.testing.assert_allclose(own[f"skill_{ref}"], expected, rtol=1e-12)
    assert (blocks.loc["median", "skill_persistence"] > 0).all()  # the members beat yesterday repeated
    assert (blocks.loc["median", "skill_median"] == 0).all()


def overall(metrics: dict) -> pd.DataFrame:
    c = pd.DataFrame(metrics["continuous"])
    sel = (c.lead_block == "all") & (c.region == "domain") & (c.season == "all")
    return c[sel].pivot(index="product", columns="species", values="rmse")


def test_report_ranks_products_as_the_data_was_built(evaluated):
    _, _, metrics = evaluated
    rmse = overall(metrics)
    for sp in SPECIES_NAMES:
        worse_members = [m for m in MEMBERS if rmse.loc[m, sp] > rmse.loc["median", sp]]
        assert len(worse_members) >= 8, (sp, rmse[sp].sort_values())
        assert rmse.loc["weighted", sp] < 0.8 * rmse.loc["median", sp]
        # The best member by trailing skill is the least noisy one, chimere.
        assert rmse.loc["best-member", sp] == pytest.approx(rmse.loc["chimere", sp], rel=0.02)
    sig = pd.DataFrame(metrics["significance"])
    sig = sig[sig.reference == "median"].set_index(["product", "species", "lead_block"])
    for sp in SPECIES_NAMES:
        for block in [*metrics["meta"]["lead_blocks"], "all"]:
            assert sig.loc[("weighted", sp, block), "verdict"] == "better"
            assert sig.loc[("silam", sp, block), "verdict"] == "worse"
            row = sig.loc[("weighted", sp, block)]
            assert row.ci_low <= row.difference <= row.ci_high < 0


def test_products_are_also_tested_against_the_compared_product(evaluated, capsys):
    """--compare-to weighted: every non-member product but the weighted itself gets bootstrap rows against
    it as well, Holm-adjusted within that reference; the report's scorecard stays against the median."""
    store, out, metrics = evaluated
    sig = pd.DataFrame(metrics["significance"])
    against = sig[sig.reference == "weighted"]
    assert set(against["product"]) == {"weighted-regions", "mean", "best-member", "median-early", "persistence",
                                       "climatology"}  # fmt: skip
    assert set(sig[sig.reference == "median"]["product"]) >= set(MEMBERS) | {"weighted"}
    mean = against[(against["product"] == "mean") & (against.lead_block != "all")]
    assert (mean.verdict == "worse").all()  # the plain mean of the mock's members is far behind the weights
    rmse = overall(metrics)
    for row in against[against.lead_block == "all"].itertuples():
        assert row.rmse_reference == pytest.approx(rmse.loc["weighted", row.species], rel=1e-6)
    expected = np.minimum(
        1, np.maximum.accumulate(np.sort(mean.p_value.to_numpy()) * np.arange(len(mean), 0, -1))
    )
    np.testing.assert_allclose(np.sort(mean.p_holm.to_numpy()), expected)
    assert metrics["meta"]["bootstrap"]["compared_to"] == ["median", "weighted"]
    capsys.readouterr()
    assert main([*ARGS, "--store", store, "--products", "median,weighted", "--compare-to", "emos,silam",
                 "--out", str(out.parent / "refused")]) == 2  # fmt: skip
    assert "--compare-to emos,silam: not among the non-member --products scored" in capsys.readouterr().err


def test_weights_are_in_the_store_and_favour_the_better_members(evaluated):
    store, _, _ = evaluated
    ds = open_dataset(store, "products/weighted")
    weights = ds["weights"].values  # (run, species, lead_block, member)
    assert weights.shape == (6, 4, 4, 11)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
    error = np.hypot(MockSkill().noise, MockSkill().bias)  # each member's relative RMSE, by construction
    for w in weights.reshape(-1, 11):
        assert spearmanr(w, error).statistic < -0.9  # the larger a member's error, the smaller its weight
    assert (ds["trailing_rmse"].values > 0).all()
    # Dehm is absent on 2025-03-11: every product still covers that run, from the members present.
    reader = StoreReader(store)
    run = np.datetime64("2025-03-11T00", "h")
    assert not reader.member_presence("o3", run)[MEMBERS.index("dehm")]
    for name in ("median", "mean", "weighted", "best-member"):
        assert reader.product_status(name, "o3", run) == Status.COMPLETE
        assert np.isfinite(reader.product(name, "o3", run, 24)).all()


def test_regional_weights_are_each_regions_inverse_trailing_mse(evaluated):
    """weighted-regions: per region, w_m ∝ 1 / MSE_m over that region's cells of the window's block leads
    (brute force over the fields), on the cells of the region."""
    store, _, _ = evaluated
    group = zarr.open_group(store, mode="r")["products/weighted-regions"]
    reader = StoreReader(store)
    region = partition_for(reader.spec.domain).index
    run = np.datetime64("2025-03-09T00", "h")
    for name in ("AL-land", "AL-sea"):
        cells = region == group.attrs["regions"].index(name)
        sse, n = np.zeros(len(MEMBERS)), np.zeros(len(MEMBERS))
        for day in range(2, 9):  # block 000-024, window 7, lag 2: the runs of 2025-03-01 … 03-07
            past = run - np.timedelta64(24 * day, "h")
            for lead in (0, 12, 24):
                err = (
                    reader.members("o3", past, lead)[:, 0][:, cells]
                    - reader.analysis("o3", past + np.timedelta64(lead, "h"))[0][cells]
                )
                sse += np.nansum(err**2, axis=1)
                n += np.isfinite(err).sum(axis=1)
        expected = (n / sse) / (n / sse).sum()
        stored = group["member_weights"][0, 0, 0, :, 0][:, cells]  # (member, cell): the region's weights
        np.testing.assert_allclose(stored, np.repeat(expected[:, None], cells.sum(), axis=1), rtol=1e-5)
    assert reader.product_status("weighted-regions", "o3", run) == Status.COMPLETE


def test_report_files_and_store_copy(evaluated):
    store, out, metrics = evaluated
    assert (out / "index.html").stat().st_size > 5000
    meta = metrics["meta"]
    assert meta["period"]["runs"] == [f"2025-03-{d:02d}" for d in range(9, 15)]
    assert meta["products"][0] == "median" and len(meta["members"]) == 11
    assert {"domain", "land", "AL"} <= set(meta["regions"])
    exceed = pd.DataFrame(metrics["exceedance"])
    assert set(exceed.threshold_name) == {"information", "alert", "limit"}  # no MDA8 of 12-hourly leads
    assert ((exceed.hits + exceed.misses + exceed.false_alarms + exceed.correct_negatives) > 0).all()
    assert {"land", "AL"} <= set(exceed.region) and set(exceed.season) == {"all", *meta["seasons"]}
    page = (out / "index.html").read_text()
    assert "CSI by region, all leads" in page and "CSI by season, all leads, whole domain" in page
    copies = list((Path(store) / "reports").iterdir())
    assert len(copies) == 1
    assert json.loads((copies[0] / "metrics.json").read_text()) == metrics
    assert validate_store(store, deep=True) == []


def test_pipeline_report_renders_in_chromium(evaluated, tmp_path):
    """The report the CLI wrote for the mock store, in a real browser: every figure loads."""
    _, out, metrics = evaluated
    with served_directory(out) as base:
        images = render_page(
            f"{base}/index.html", ARTIFACTS / "evaluate-report.png", tmp_path / "profile", "table.scorecard"
        ).images
    assert len(images) == 2 * len(metrics["meta"]["species"])  # lead-time plot and maps per species
    assert (out / "figures").is_dir()


def test_median_early_is_the_median_of_the_first_six_members(evaluated):
    store, _, metrics = evaluated
    reader = StoreReader(store)
    run = np.datetime64("2025-03-10T00", "h")
    early = [MEMBERS.index(m) for m in EARLY_MEMBERS]
    for species in ("o3", "pm10"):
        members = reader.members(species, run, 24)
        np.testing.assert_allclose(
            reader.product("median-early", species, run, 24), np.nanmedian(members[early], axis=0), rtol=1e-6
        )
    rmse = overall(metrics)
    # Five members fewer: a worse median on this store, where members are independent draws.
    assert (rmse.loc["median-early"] > rmse.loc["median"]).all()


def test_rerun_reuses_stored_baselines(evaluated, tmp_path, caplog):
    store, _, first = evaluated
    products = zarr.open_group(store, mode="r")["products/median/o3"]
    before = products[:].copy()
    # A pattern names every stored product it matches (here both weighted baselines).
    assert main([*ARGS, "--store", store, "--products", "weight*", "--out", str(tmp_path / "again")]) == 0
    assert "runs computed" not in caplog.text
    np.testing.assert_array_equal(zarr.open_group(store, mode="r")["products/median/o3"][:], before)
    again = json.loads((tmp_path / "again" / "metrics.json").read_text())
    assert again["meta"]["products"] == ["median", "weighted", "weighted-regions"]
    assert overall(again).loc["weighted"].equals(overall(first).loc["weighted"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--products", "median,nonsense"], "unknown product 'nonsense'"),
        (["--products", "dlens-*"], "no product in the store matches 'dlens-*'"),
        (["--start", "2024-01-01", "--days", "3"], "no forecast run of o3,no2,so2,pm10 from 2024-01-01"),
        (["--species", "co"], "unknown species"),
        (["--domain", "50.05,51.05,7.05,8.05"], "is not inside the store's domain"),
        (["--days", "0"], "--days 0: expected at least 1"),
    ],
)
def test_bad_arguments_give_one_line_and_no_report(evaluated, tmp_path, capsys, extra, message):
    store, _, _ = evaluated
    out = tmp_path / "report"
    argv = [*ARGS, "--store", store, "--out", str(out)]
    for i in range(0, len(extra), 2):  # later flags override the defaults above
        argv += extra[i : i + 2]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not out.exists() and not list(tmp_path.glob(".report*"))


def test_invalid_store_is_refused_without_writing(tmp_path, capsys):
    store = tmp_path / "broken.zarr"
    build_mock_store(str(store), START, days=2)
    shutil.rmtree(store / "analysis" / "no2")  # a group loses a variable
    out = tmp_path / "report"
    assert (
        main([*ARGS, "--store", str(store), "--start", "2025-03-01", "--days", "2", "--out", str(out)]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert "fails validation: analysis: variable 'no2' is missing" in err and len(err.splitlines()) == 1
    assert not out.exists() and not (store / "products" / "median").exists()
    assert main([*ARGS, "--store", str(tmp_path / "none.zarr"), "--out", str(out)]) == 2
    assert "fails validation: cannot open store" in capsys.readouterr().err


def test_a_locked_store_is_refused_in_one_line_and_left_to_its_writer(tmp_path, capsys):
    store = str(tmp_path / "mock.zarr")
    build_mock_store(store, START, days=2)
    holder = acquire(store, "dlens-ingest files --store S (another writer)")
    out = tmp_path / "report"
    try:
        argv = [*ARGS, "--store", store, "--start", "2025-03-01", "--days", "2", "--products", "median"]
        assert main([*argv, "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "is locked by another writer" in err and "(another writer)" in err
        assert len(err.splitlines()) == 1
        assert read_lock(store) == holder and not out.exists()
        assert not (tmp_path / "mock.zarr" / "products" / "median").exists()
    finally:
        release(store, holder)


def test_console_script_on_s3(s3_bucket, tmp_path, ray_cluster):
    """The installed script, a store in a bucket over HTTP, the report copied under reports/ there."""
    store = f"{s3_bucket}/store.zarr"
    build_mock_store(store, START, days=3, skill=MockSkill(absent=()))
    out = tmp_path / "report"
    cli = shutil.which("dlens-evaluate")
    assert cli, "dlens-evaluate is not installed"
    done = subprocess.run(
        [cli, *ARGS, "--store", store, "--start", "2025-03-02", "--days", "2", "--products", "median,mean",
         "--species", "o3", "--out", str(out)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"report: {out / 'index.html'}"
    import s3fs

    listed = s3fs.S3FileSystem().find(f"{s3_bucket}/store.zarr/reports")
    assert any(p.endswith("/index.html") for p in listed) and any(p.endswith("metrics.json") for p in listed)
    assert any(p.endswith(".png") for p in listed)


def test_mda8_and_the_top_five_percent_match_a_brute_force(tmp_path, ray_cluster):
    """On hourly leads: the O3 MDA8 scores and exceedance counts (whole domain, over land, in the season)
    and the RMSE over each run's top 5 % of analysed values equal a recomputation from the stored median and
    analysis."""
    store, out = str(tmp_path / "hourly.zarr"), tmp_path / "report"
    build_mock_store(store, START, days=4, leads=range(97))
    assert main(["--no-progress", "--start", "2025-03-02", "--days", "2", "--resamples", "100", "--store", store,
                 "--species", "o3", "--products", "median", "--out", str(out)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    reader = StoreReader(store)
    sse = {"mda8": 0.0, "top": 0.0}
    n = {"mda8": 0, "top": 0}
    regions = regions_for(reader.spec.domain)
    land = regions.masks[regions.names.index("land")]
    on_land = {"pairs": 0, "hits": 0}
    for day in (2, 3):
        run = np.datetime64(f"2025-03-0{day}T00", "h")
        median = np.stack([reader.product("median", "o3", run, h)[0] for h in range(97)]).astype(np.float64)
        truth = np.stack([_analysis(reader, run + np.timedelta64(h, "h")) for h in range(97)])
        top = truth >= np.nanpercentile(truth, 95)
        sse["top"] += ((median - truth)[top] ** 2).sum()
        n["top"] += top.sum()
        forecast, observed = _mda8(median), _mda8(truth)
        ok = np.isfinite(forecast) & np.isfinite(observed)
        sse["mda8"] += ((forecast - observed)[ok] ** 2).sum()
        n["mda8"] += ok.sum()
        on_land["pairs"] += (ok & land).sum()
        on_land["hits"] += (ok & land & (forecast > 120) & (observed > 120)).sum()
    overall = {(r["region"], r["season"]): r for r in metrics["mda8"]
               if r["product"] == "median" and r["lead_block"] == "all"}  # fmt: skip
    mda8 = overall[("domain", "all")]
    assert n["mda8"] > 0 and mda8["n"] == n["mda8"]
    (in_season,) = [row for (region, name), row in overall.items() if region == "domain" and name != "all"]
    assert in_season["n"] == mda8["n"] and in_season["rmse"] == pytest.approx(
        mda8["rmse"]
    )  # the runs' season
    assert overall[("land", "all")]["n"] == on_land["pairs"]
    assert mda8["rmse"] == pytest.approx(np.sqrt(sse["mda8"] / n["mda8"]), rel=1e-6)
    (row,) = [r for r in metrics["continuous"] if r["product"] == "median" and r["lead_block"] == "all"
              and r["region"] == "domain" and r["season"] == "all"]  # fmt: skip
    assert row["rmse_top5"] == pytest.approx(np.sqrt(sse["top"] / n["top"]), rel=1e-6)
    assert row["rmse_top5"] > row["rmse"]  # the mock's errors grow with the concentration
    targets = {(r["region"], r["season"]): r for r in metrics["exceedance"]
               if r["product"] == "median" and r["averaging"] == "mda8" and r["lead_block"] == "all"}  # fmt: skip
    target, land_target = targets[("domain", "all")], targets[("land", "all")]
    assert target["threshold"] == 120 and target["threshold_name"] == "target"
    contingency = ("hits", "misses", "false_alarms", "correct_negatives")
    assert sum(target[k] for k in contingency) == n["mda8"]
    assert sum(land_target[k] for k in contingency) == on_land["pairs"] < n["mda8"]
    assert land_target["hits"] == on_land["hits"] and land_target["fss"] is None  # FSS: whole domain only
    (season,) = [row for (region, name), row in targets.items() if region == "domain" and name != "all"]
    assert {k: season[k] for k in contingency} == {k: target[k] for k in contingency}  # the runs' one season
    assert all(r["fss_window"] == 5 and "sedi" in r and "fss" in r for r in metrics["exceedance"])


def _analysis(reader: StoreReader, valid: np.datetime64) -> np.ndarray:
    field = reader.analysis("o3", valid)
    return np.full(reader.spec.domain.shape, np.nan) if field is None else field[0].astype(np.float64)


def _mda8(hourly: np.ndarray) -> np.ndarray:
    """(4, lat, lon) maxima of the 8-h means ending in days 0-3 of leads 0-96: windows with ≥ 6 hours, days
    with ≥ 75 % of their windows."""
    windows = sliding_window_view(hourly, 8, axis=0)  # window i: leads i .. i + 7
    count = np.isfinite(windows).sum(axis=-1)
    means = np.where(count >= 6, np.nansum(windows, axis=-1) / np.maximum(count, 1), np.nan)
    days = []
    for day in range(4):
        day_means = means[np.arange(max(7, 24 * day), 24 * day + 24) - 7]
        enough = np.isfinite(day_means).sum(axis=0) >= np.ceil(0.75 * len(day_means))
        highest = np.where(np.isfinite(day_means), day_means, -np.inf).max(axis=0)
        days.append(np.where(enough, highest, np.nan))
    return np.stack(days)
