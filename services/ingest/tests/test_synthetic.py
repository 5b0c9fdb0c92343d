"""Synthetic generator: determinism, shapes, positivity, missing members, meteo, error floor."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.layout import METEO_VARIABLES as LAYOUT_METEO
from dlens.common.species import MEMBERS, SPECIES_NAMES
from dlens.ingest.synthetic import METEO_VARIABLES, SyntheticGenerator
from dlens.ingest.synthetic.members import MISSING_RATE

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
    assert params["seed"] == 0
    assert [m["name"] for m in params["members"]] == list(MEMBERS)
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
        t, a = gen.truth(sp, valid), gen.analysis(sp, valid)
        m = gen.members(sp, RUN, 30)
        assert t.shape == a.shape == TINY.shape and m.shape == (len(MEMBERS), *TINY.shape)
        assert t.dtype == a.dtype == m.dtype == np.float32
        assert (t > 0).all() and (a > 0).all()
        present = ~gen.missing_members(RUN)
        assert np.isfinite(m[present]).all() and (m[present] > 0).all()
        assert np.isnan(m[~present]).all()
        assert not np.array_equal(a, t)  # the analysis has its own small error
        assert np.abs(np.log(a / t)).mean() < 0.15


def test_members_not_aliased(gen):
    m = gen.members("no2", RUN, 6)
    m[:] = -1
    assert (np.nan_to_num(gen.members("no2", RUN, 6), nan=1.0) > 0).all()


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
    np.testing.assert_array_equal(g1.meteo("blh", day_b, 30), g2.meteo("blh", day_b, 30))
    np.testing.assert_array_equal(g1.missing_members(day_b), g2.missing_members(day_b))
    g3 = SyntheticGenerator(TINY, seed=4)
    assert not np.array_equal(g3.analysis("o3", day_b), g2.analysis("o3", day_b))
    assert not np.allclose(g3.members("o3", day_b, 0), g2.members("o3", day_b, 0), equal_nan=True)


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


def test_meteo_shapes_ranges_and_error_growth():
    g = SyntheticGenerator(DEMO, seed=0)
    runs = [datetime(2018, 7, 1) + timedelta(days=d) for d in range(3)]
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
        for h in (6, 12, 15):
            truth = scale(g.true_meteo(var, runs[2] + timedelta(hours=h)))
            early.append(np.mean((scale(g.meteo(var, runs[2], h)) - truth) ** 2))
            late.append(np.mean((scale(g.meteo(var, runs[0], h + 48)) - truth) ** 2))
        assert np.sqrt(np.mean(late)) > 1.3 * np.sqrt(np.mean(early)), var


def test_error_floor(gen):
    total = dict.fromkeys(("n", "analysis_sq", "common_sq", "median_sq"), 0.0)
    for lead in (0, 24, 48, 96):
        floor = gen.error_floor("no2", RUN, lead)
        assert set(floor) == set(total)
        for k, v in floor.items():
            assert isinstance(v, float) and np.isfinite(v) and v > 0, k
            total[k] += v
    assert total["n"] == 4 * TINY.shape[0] * TINY.shape[1]
    # The median is worse than the analysis and than the irreducible common error alone.
    assert total["median_sq"] > total["analysis_sq"] and total["median_sq"] > total["common_sq"]
    assert gen.error_floor("no2", RUN, 96)["common_sq"] > gen.error_floor("no2", RUN, 0)["common_sq"]
