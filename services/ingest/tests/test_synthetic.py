"""Synthetic generator: determinism, shapes, positivity, missing members, the two weathers, members'
situation-dependent errors and versions, the CAMS-like analysis, the stations, the error floor."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.layout import METEO_VARIABLES as LAYOUT_METEO
from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.ingest.synthetic import METEO_VARIABLES, SyntheticGenerator
from dlens.ingest.synthetic.members import MISSING_RATE, member_median, version_changes
from dlens.ingest.synthetic.observing import eea_stations
from dlens.ingest.synthetic.seeding import hour_index

TINY = parse_domain("tiny")
DEMO = parse_domain("demo")
RUN = datetime(2018, 3, 14)


@pytest.fixture(scope="module")
def gen() -> SyntheticGenerator:
    return SyntheticGenerator(TINY, seed=0)


def test_interface_constants():
    assert METEO_VARIABLES == ("t2m", "blh", "u10", "v10", "ssrd")
    assert tuple(LAYOUT_METEO) == METEO_VARIABLES


def test_params_are_json_and_describe_the_members(gen):
    params = json.loads(json.dumps(gen.params))
    assert params == gen.params  # no tuples or numpy scalars that a JSON round trip would change
    assert params["seed"] == 0 and params["version"] == 2
    assert [m["name"] for m in params["members"]] == list(MEMBERS)
    assert set(params["members"][0]["bias"]["no2"]) >= {
        "stability",
        "temperature",
        "wind",
        "season",
        "saturation",
    }
    assert SyntheticGenerator(TINY, seed=1).params != gen.params


def test_static_fields(gen):
    st = gen.static_fields()
    assert set(st) == {"land_sea_mask", "orography"}
    for v in st.values():
        assert v.shape == TINY.shape and v.dtype == np.float32 and np.isfinite(v).all()
    lsm, oro = st["land_sea_mask"], st["orography"]
    assert lsm.min() >= 0 and lsm.max() <= 1
    assert lsm.min() < 0.1 and lsm.max() > 0.9  # the tiny domain holds the Ligurian Sea and the Po Valley
    assert oro.min() >= 0 and oro.max() > 1500  # and the Alps
    demo = SyntheticGenerator(DEMO).static_fields()["land_sea_mask"]
    lat, lon = DEMO.latitude, DEMO.longitude
    at = lambda la, lo: demo[np.argmin(abs(lat - la)), np.argmin(abs(lon - lo))]  # noqa: E731
    assert at(45.45, 9.15) > 0.9 and at(43.55, 13.95) < 0.1  # Milan on land, the Adriatic at sea


def test_shapes_dtypes_positive(gen):
    valid = RUN + timedelta(hours=30)
    for sp in SPECIES_NAMES:
        t = gen.truth(sp, valid)
        analyses = [gen.analysis(sp, valid, kind) for kind in ("analysis", "interim", "validated")]
        m = gen.members(sp, RUN, 30)
        assert t.shape == TINY.shape and m.shape == (len(MEMBERS), *TINY.shape)
        assert t.dtype == m.dtype == np.float32 and (t > 0).all()
        for a in analyses:
            assert a.shape == TINY.shape and a.dtype == np.float32 and (a > 0).all()
            assert not np.array_equal(a, t) and np.abs(np.log(a / t)).mean() < 0.3
        present = ~gen.missing_members(RUN)
        assert np.isfinite(m[present]).all() and (m[present] > 0).all()
        assert np.isnan(m[~present]).all()


def test_members_not_aliased(gen):
    m = gen.members("no2", RUN, 6)
    m[:] = -1
    assert (np.nan_to_num(gen.members("no2", RUN, 6), nan=1.0) > 0).all()
    with pytest.raises(ValueError):  # the cached truth cannot be changed through what truth() returns
        gen.truth("no2", RUN)[:] = 0


def test_deterministic_across_instances_and_order():
    day_a, day_b = datetime(2018, 5, 1), datetime(2018, 5, 9)
    g1 = SyntheticGenerator(TINY, seed=3)
    for lead in (0, 24, 48):  # warm the caches with another day first
        g1.members("o3", day_a, lead)
        g1.analysis("pm10", day_a + timedelta(hours=lead))
    g2 = SyntheticGenerator(TINY, seed=3)  # day B alone, in another order
    for sp in ("pm10", "o3"):
        for lead in (72, 0, 45):
            valid = day_b + timedelta(hours=lead)
            np.testing.assert_array_equal(g1.members(sp, day_b, lead), g2.members(sp, day_b, lead))
            np.testing.assert_array_equal(g1.analysis(sp, valid), g2.analysis(sp, valid))
            np.testing.assert_array_equal(
                g1.analysis(sp, valid, "validated"), g2.analysis(sp, valid, "validated")
            )
            np.testing.assert_array_equal(g1.observations(sp, valid), g2.observations(sp, valid))
    np.testing.assert_array_equal(g1.meteo("blh", day_b, 30), g2.meteo("blh", day_b, 30))
    np.testing.assert_array_equal(g1.missing_members(day_b), g2.missing_members(day_b))
    g3 = SyntheticGenerator(TINY, seed=4)
    assert not np.array_equal(g3.analysis("o3", day_b), g2.analysis("o3", day_b))
    assert not np.allclose(g3.members("o3", day_b, 0), g2.members("o3", day_b, 0), equal_nan=True)


def test_a_crop_is_the_same_crop_of_a_larger_domain():
    """Stations, observation density and analyses of the tiny domain equal those cells of the demo domain."""
    small, large = SyntheticGenerator(TINY, seed=2), SyntheticGenerator(DEMO, seed=2)
    i = int(np.argmin(abs(DEMO.latitude - TINY.latitude[0])))
    j = int(np.argmin(abs(DEMO.longitude - TINY.longitude[0])))
    crop = (slice(i, i + TINY.shape[0]), slice(j, j + TINY.shape[1]))
    np.testing.assert_allclose(
        small.observing.pull("no2", "analysis"), large.observing.pull("no2", "analysis")[crop], atol=1e-6
    )
    valid = RUN + timedelta(hours=13)
    np.testing.assert_allclose(small.analysis("o3", valid), large.analysis("o3", valid)[crop], rtol=0.02)
    codes = set(large.stations()["code"])
    assert set(small.stations()["code"]) <= codes


def test_continuous_across_midnight(gen):
    """Daily fields are blended, so 23 UTC -> 00 UTC is an ordinary hourly step."""
    steps = []
    for h in range(12, 37):
        t0 = gen.truth("no2", RUN + timedelta(hours=h))
        t1 = gen.truth("no2", RUN + timedelta(hours=h + 1))
        steps.append(np.abs(np.log(t1 / t0)).mean())
    midnight = steps[23 - 12]  # 23 -> 24
    assert midnight < 2.5 * np.median(steps)


def test_missing_members_rate_and_species_consistency(gen):
    runs = [datetime(2018, 1, 1) + timedelta(days=d) for d in range(400)]
    missing = np.array([gen.missing_members(r) for r in runs])
    assert missing.shape == (400, len(MEMBERS)) and missing.dtype == bool
    assert 0.5 * MISSING_RATE < missing.mean() < 2 * MISSING_RATE
    run = runs[int(np.flatnonzero(missing.any(axis=1))[0])]
    expected = gen.missing_members(run)
    for sp in SPECIES_NAMES:
        rows = np.isnan(gen.members(sp, run, 12)).all(axis=(1, 2))
        np.testing.assert_array_equal(rows, expected)


def test_bad_arguments(gen):
    with pytest.raises(ValueError, match="species"):
        gen.truth("co", RUN)
    with pytest.raises(ValueError, match="lead"):
        gen.members("o3", RUN, 97)
    with pytest.raises(ValueError, match="00 UTC"):
        gen.members("o3", RUN + timedelta(hours=12), 0)
    with pytest.raises(ValueError, match="meteo"):
        gen.meteo("msl", RUN, 0)
    with pytest.raises(ValueError, match="analysis"):
        gen.analysis("o3", RUN, "final")


def test_meteo_shapes_ranges_and_error_growth():
    g = SyntheticGenerator(DEMO, seed=0)
    runs = [datetime(2018, 7, 1) + timedelta(days=d) for d in range(6)]
    for var in METEO_VARIABLES:
        f = g.meteo(var, runs[0], 12)
        assert f.shape == DEMO.shape and f.dtype == np.float32 and np.isfinite(f).all()
    t2m = np.stack([g.meteo("t2m", runs[0], lead) for lead in range(0, 24, 3)])
    assert t2m.min() > 255 and t2m.max() < 320
    blh = np.stack([g.meteo("blh", runs[0], lead) for lead in range(0, 24, 3)])
    assert blh.min() > 20 and blh.max() < 5000 and blh.max() > 800
    ssrd = np.stack([g.meteo("ssrd", runs[0], lead) for lead in range(0, 24, 3)])
    assert ssrd.min() >= 0 and ssrd.max() > 400 and (ssrd[0] == 0).all()  # 00 UTC: night in July
    for var in ("u10", "v10"):
        assert np.abs(g.meteo(var, runs[0], 6)).max() < 40
    # Same valid times, the later run is the better forecast (error grows with lead).
    for var in METEO_VARIABLES:
        scale = np.log if var == "blh" else np.asarray  # boundary-layer height errors are relative
        early, late = [], []
        for r in range(2, 6):
            for h in (6, 12, 15):
                truth = scale(g.true_meteo(var, runs[r] + timedelta(hours=h)))
                early.append(np.mean((scale(g.meteo(var, runs[r], h)) - truth) ** 2))
                late.append(np.mean((scale(g.meteo(var, runs[r - 2], h + 48)) - truth) ** 2))
        assert np.sqrt(np.mean(late)) > 1.2 * np.sqrt(np.mean(early)), var


def test_the_meteo_group_is_the_weather_the_members_ran_on():
    """The `meteo` forecast is exactly what drove the members (not the truth): where it is too shallow a
    boundary layer, the members' NO2 is too high; their shared error follows the weather forecast error."""
    g = SyntheticGenerator(DEMO, seed=0)
    run, day = datetime(2018, 1, 10), (datetime(2018, 1, 10) - datetime(2000, 1, 1)).days
    for lead in (6, 54):
        drove = g.weather.forecast_at(day, lead)
        np.testing.assert_array_equal(g.meteo("blh", run, lead), np.exp(drove.log_blh).astype(np.float32))
        np.testing.assert_array_equal(g.meteo("t2m", run, lead), drove.t2m)
    blh_error, no2_error = [], []
    for lead in range(24, 97, 12):
        valid = run + timedelta(hours=lead)
        blh_error.append(np.log(g.meteo("blh", run, lead) / g.true_meteo("blh", valid)).ravel())
        no2_error.append(np.log(member_median(g.members("no2", run, lead)) / g.truth("no2", valid)).ravel())
    r = np.corrcoef(np.concatenate(blh_error), np.concatenate(no2_error))[0, 1]
    assert r < -0.3, r


def test_member_errors_depend_on_the_situation_not_on_position_alone():
    """Biases conditional on stability (NO2 too low in stable layers) and no fixed map: the per-gridpoint
    mean of a member's log error over four weeks (its overall bias aside) removes under half of the
    variance of its error on the next four (position alone does not recover it), and the map itself
    changes from one month to the next."""
    g = SyntheticGenerator(TINY, seed=0)
    runs = [datetime(2018, 1, 3) + timedelta(days=d) for d in range(0, 56, 2)]
    errors, stability = [], []
    for run in runs:
        day = (run - datetime(2000, 1, 1)).days
        for lead in (3, 27, 51, 75):  # over the forecast range
            valid = run + timedelta(hours=lead)
            errors.append(np.log(g.members("no2", run, lead) / g.truth("no2", valid)))
            stability.append(g.weather.forecast_at(day, lead).stability)
    e, s = np.stack(errors), np.stack(stability)  # (time, member, y, x), (time, y, x)
    median_error = np.nanmedian(e, axis=1)
    stable, unstable = s > np.percentile(s, 75), s < np.percentile(s, 25)
    assert median_error[stable].mean() < median_error[unstable].mean() - 0.03
    half = len(e) // 2
    for m in range(len(MEMBERS)):
        em = e[:, m]
        if not np.isfinite(em).all(axis=(1, 2)).mean() > 0.8:
            continue
        first, second = np.nanmean(em[:half], axis=0), np.nanmean(em[half:], axis=0)
        later = em[half:] - np.nanmean(em[half:])  # a member's overall bias is a number, not a map
        explained = 1 - np.nanmean((later - (first - np.nanmean(first))) ** 2) / np.nanmean(later**2)
        assert explained < 0.5, (MEMBERS[m], explained)
        assert np.abs(first - second).mean() > 0.01, MEMBERS[m]  # the map itself drifts


def test_a_member_changes_version_once_a_year():
    g = SyntheticGenerator(TINY, seed=0)
    member, start = version_changes(0, 2018)
    before, after = start - timedelta(days=1), start
    assert g.member_versions(after)[member] == g.member_versions(before)[member] + 1
    others = [m for m in range(len(MEMBERS)) if m != member]
    np.testing.assert_array_equal(g.member_versions(after)[others], g.member_versions(before)[others])
    shift = g.ensemble.version_shift(member, int(g.member_versions(after)[member]))
    previous = g.ensemble.version_shift(member, int(g.member_versions(before)[member]))
    assert np.abs(shift - previous).max() > 0.02  # the new version's biases differ
    assert len({version_changes(0, year)[1].year for year in range(2016, 2026)}) == 10


def test_the_analysis_leans_on_the_members_where_stations_are_sparse():
    g = SyntheticGenerator(DEMO, seed=0)
    rho = g.observing.pull("no2", "analysis")
    sparse, dense = rho < 0.1, rho > 0.7
    assert sparse.mean() > 0.05 and dense.mean() > 0.05  # the Alps and the Adriatic; the Po Valley cities
    analysis_error, member_error = [], []
    for h in range(6, 54, 3):
        valid = RUN + timedelta(hours=h)
        t = np.log(g.truth("no2", valid))
        analysis_error.append(np.log(g.analysis("no2", valid)) - t)
        member_error.append(
            g.background("no2", int((valid - datetime(2000, 1, 1)).total_seconds() // 3600)) - t
        )
    a, b = np.stack(analysis_error), np.stack(member_error)

    def corr(mask):
        return np.corrcoef(a[:, mask].ravel(), b[:, mask].ravel())[0, 1]

    assert corr(sparse) > 0.5 and corr(dense) < 0.4, (
        corr(sparse),
        corr(dense),
    )  # it carries the models' error
    assert np.abs(a[:, sparse]).mean() > 1.2 * np.abs(a[:, dense]).mean()
    # The reanalyses assimilate more stations and are closer to the truth.
    errors = {kind: [] for kind in ("analysis", "validated")}
    for h in range(0, 48, 5):
        valid = RUN + timedelta(hours=h)
        for kind in errors:
            errors[kind].append(
                np.abs(np.log(g.analysis("pm10", valid, kind) / g.truth("pm10", valid))).mean()
            )
    assert np.mean(errors["validated"]) < np.mean(errors["analysis"])


def test_stations_inside_the_domain_and_withheld_ones_never_assimilated():
    g = SyntheticGenerator(DEMO, seed=0)
    st = g.stations()
    assert len(st) > 100 and st["code"].is_unique
    assert st["latitude"].between(DEMO.latitude[0] - 0.05, DEMO.latitude[-1] + 0.05).all()
    assert st["longitude"].between(DEMO.longitude[0] - 0.05, DEMO.longitude[-1] + 0.05).all()
    assert 0.08 < st["withheld"].mean() < 0.25
    real = eea_stations().set_index("code")
    for sp in SPECIES_NAMES:  # each station measures what the EEA network says it measures
        np.testing.assert_array_equal(st[f"measures_{sp}"].to_numpy(), real.loc[st["code"], sp].to_numpy())
    withheld = set(st.loc[st["withheld"], "code"])
    for sp in SPECIES_NAMES:
        for kind in ("analysis", "interim", "validated"):
            assert withheld.isdisjoint(g.observing.assimilated(sp, kind)["code"])
    # The analysis' observation density comes from the assimilated stations only.
    counts = np.zeros(g.grid.shape, np.float32)
    for lat, lon in g.observing.assimilated("o3", "analysis")[["latitude", "longitude"]].itertuples(
        index=False
    ):
        ij = g.grid.index(lon, lat)
        if ij is not None:
            counts[ij] += 1
    from scipy.ndimage import gaussian_filter

    density = g.grid.crop(gaussian_filter(counts, 2.5, mode="constant")) * np.float32(2 * np.pi * 2.5**2)
    rho = g.observing.pull("o3", "analysis")
    assert np.corrcoef(1 - np.exp(-density).ravel(), rho.ravel())[0, 1] > 0.9


def test_observations_are_the_truth_at_the_stations_with_a_representativeness_error():
    g = SyntheticGenerator(DEMO, seed=0)
    st = g.stations()
    obs, at_station = [], []
    for h in range(0, 72, 3):
        valid = RUN + timedelta(hours=h)
        obs.append(g.observations("no2", valid))
        at_station.append(g.observing.stations.sample(g.truth("no2", valid)))
    obs, at_station = np.stack(obs), np.stack(at_station)
    measured = st["measures_no2"].to_numpy()
    assert np.isnan(obs[:, ~measured]).all() and np.isfinite(obs[:, measured]).mean() > 0.9
    ratio = np.full(len(st), np.nan)
    ratio[measured] = np.nanmean(np.log(obs[:, measured] / at_station[:, measured]), axis=0)
    traffic = (st["type"] == "traffic").to_numpy() & measured
    rural = (st["type"] == "background").to_numpy() & (st["area"] == "rural").to_numpy() & measured
    assert ratio[traffic].mean() > ratio[rural].mean() + 0.2  # traffic sites see more NO2 than their cell
    assert np.nanmedian(np.abs(np.log(obs / at_station))[:, rural]) < 0.5


def test_error_floor(gen):
    total = dict.fromkeys(("n", "weather_sq", "median_sq"), 0.0)
    for lead in (0, 48, 96):
        floor = gen.error_floor("no2", RUN, lead)
        assert set(floor) == set(total)
        for k, v in floor.items():
            assert isinstance(v, float) and np.isfinite(v) and v > 0, k
            total[k] += v
    assert total["n"] == 3 * TINY.shape[0] * TINY.shape[1]
    assert gen.error_floor("no2", RUN, 96)["weather_sq"] > gen.error_floor("no2", RUN, 0)["weather_sq"]
    hourly = gen.analysis_floor("no2", RUN + timedelta(hours=5))
    assert set(hourly) == {"n", "analysis_sq", "interim_sq", "validated_sq"}
    assert hourly["validated_sq"] > 0 and hourly["analysis_sq"] > 0


def _daily_log_means_and_stagnation(gen: SyntheticGenerator, start: datetime, days: int):
    """Per species, the log daily means (every 3 h) of the truth at the one cell of `gen`; and each day's
    mean stagnation driver."""
    log_means, stagnation = {sp: [] for sp in ("pm10", "so2")}, []
    for d in range(days):
        times = [start + timedelta(days=d, hours=h) for h in range(0, 24, 3)]
        for sp, means in log_means.items():
            means.append(np.log(np.mean([gen.truth(sp, t)[0, 0] for t in times])))
        stagnation.append(np.mean([gen.chemistry.hour(hour_index(t)).hw.stagnation[0, 0] for t in times]))
    return {sp: np.array(v) for sp, v in log_means.items()}, np.array(stagnation)


@pytest.mark.parametrize("seed", [0, 3])
def test_winter_stagnation_builds_more_pm10_and_regional_so2(seed):
    """At Milan, a stagnant day raises PM10 more in winter than in summer (secondary aerosol and inversions),
    and SO2's daily means follow the stagnation driver in both seasons (the regional background builds up)."""
    gen = SyntheticGenerator(parse_domain("45.45,45.45,9.15,9.15"), seed)
    slopes = {}
    for season, start in (("winter", datetime(2025, 1, 1)), ("summer", datetime(2025, 6, 15))):
        log_means, stagnation = _daily_log_means_and_stagnation(gen, start, 60)
        slopes[season] = np.polyfit(stagnation, log_means["pm10"], 1)[0]
        assert np.corrcoef(stagnation, log_means["so2"])[0, 1] > 0.4, season
    assert slopes["winter"] > 1.1 * slopes["summer"] > 0, slopes
