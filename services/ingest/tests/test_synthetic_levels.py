"""The synthetic generator's levels above ground: the surface unchanged, the shape of the profiles, the
members' boundary-layer error aloft, the analysis pulled less aloft, and a multi-level ingest."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from dlens.common.grid import parse_domain
from dlens.common.layout import FORECASTS
from dlens.common.reader import StoreReader
from dlens.common.schema import validate_store
from dlens.common.species import LEVELS_M, SPECIES_NAMES
from dlens.common.store import open_store
from dlens.ingest.cli import main
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.ingest.synthetic import levels as aloft
from dlens.ingest.synthetic.observing import RHO_MAX
from dlens.ingest.synthetic.seeding import hour_index, run_index

DEMO = parse_domain("demo")
SUMMER, WINTER = datetime(2025, 7, 8), datetime(2025, 1, 14)
ABOVE = LEVELS_M[1:]


@pytest.fixture(scope="module")
def gen() -> SyntheticGenerator:
    return SyntheticGenerator(DEMO, seed=0)


@pytest.fixture(scope="module")
def land(gen) -> np.ndarray:
    return gen.static_fields()["land_sea_mask"] > 0.5


def test_level_0_is_the_surface_field_whatever_was_asked_before():
    """Level 0 is the field of a call without a level, bit for bit, also in a generator that lifted the same
    fields aloft first (the profile never touches the cached surface fields)."""
    run, valid = datetime(2025, 7, 1), datetime(2025, 7, 1, 13)
    plain = SyntheticGenerator(DEMO, seed=3)
    lifted = SyntheticGenerator(DEMO, seed=3)
    for sp in SPECIES_NAMES:
        for z in (50, 1000):
            lifted.members(sp, run, 13, z)
            lifted.truth(sp, valid, z)
            for kind in ("analysis", "validated"):
                lifted.analysis(sp, valid, kind, z)
    for sp in SPECIES_NAMES:
        want = plain.members(sp, run, 13)
        np.testing.assert_array_equal(lifted.members(sp, run, 13, level=0), want)
        np.testing.assert_array_equal(plain.members(sp, run, 13, level=0), want)
        np.testing.assert_array_equal(lifted.truth(sp, valid, level=0), plain.truth(sp, valid))
        for kind in ("analysis", "validated"):
            np.testing.assert_array_equal(
                lifted.analysis(sp, valid, kind, level=0), plain.analysis(sp, valid, kind)
            )
        assert plain.error_floor(sp, run, 12) == lifted.error_floor(sp, run, 12)
        # and a level above is another field
        assert not np.allclose(lifted.members(sp, run, 13, 500), want, equal_nan=True)


def test_every_level_positive_finite_and_deterministic(gen):
    other = SyntheticGenerator(DEMO, seed=0)
    run = SUMMER
    missing = gen.missing_members(run)
    for sp in SPECIES_NAMES:
        for z in ABOVE:
            members = gen.members(sp, run, 27, z)
            assert members.shape == (11, *DEMO.shape) and members.dtype == np.float32
            assert np.isnan(members[missing]).all()
            assert np.isfinite(members[~missing]).all() and (members[~missing] > 0).all()
            for kind in ("analysis", "interim", "validated"):
                field = gen.analysis(sp, run + timedelta(hours=27), kind, z)
                assert field.dtype == np.float32 and np.isfinite(field).all() and (field > 0).all()
            truth = gen.truth(sp, run + timedelta(hours=27), z)
            assert np.isfinite(truth).all() and (truth > 0).all()
        # deterministic from (seed, date): a new generator asked for this lead alone gives the same bytes
        np.testing.assert_array_equal(other.members(sp, run, 27, 750), gen.members(sp, run, 27, 750))
        np.testing.assert_array_equal(
            other.analysis(sp, run + timedelta(hours=27), "interim", 750),
            gen.analysis(sp, run + timedelta(hours=27), "interim", 750),
        )
    with pytest.raises(ValueError, match="height above ground"):
        gen.truth("o3", run, -50)


def _profile(gen, species: str, valid: datetime) -> np.ndarray:
    return np.stack([gen.truth(species, valid, z) for z in LEVELS_M])


@pytest.mark.parametrize("day", [SUMMER, WINTER])
def test_o3_increases_with_height_at_night_over_land(gen, land, day):
    o3 = _profile(gen, "o3", day + timedelta(hours=2))[:, land]
    medians = np.median(o3, axis=1)
    assert (np.diff(medians[:6]) > 0).all(), medians  # 0 .. 750 m
    assert (o3[3] > o3[0]).mean() > 0.95  # 250 m above the surface nearly everywhere
    assert medians[3] > 1.3 * medians[0]


def test_o3_changes_little_within_a_deep_afternoon_layer(gen, land):
    night, afternoon = SUMMER + timedelta(hours=2), SUMMER + timedelta(hours=14)
    blh = gen.true_meteo("blh", afternoon)[land]
    deep = blh > 1200
    assert deep.mean() > 0.3
    by_day = _profile(gen, "o3", afternoon)[:, land]
    by_night = _profile(gen, "o3", night)[:, land]
    day_change = np.abs(np.log(by_day[4, deep] / by_day[0, deep]))  # 500 m against the surface
    night_change = np.log(by_night[4] / by_night[0])
    assert np.median(day_change) < 0.05 < 0.3 < np.median(night_change)


@pytest.mark.parametrize("species", ["no2", "so2", "pm10"])
def test_surface_emitted_species_decrease_within_the_layer_and_tend_to_the_background_above(
    gen, land, species
):
    for valid in (SUMMER + timedelta(hours=2), WINTER + timedelta(hours=14)):
        c = _profile(gen, species, valid)
        blh = gen.true_meteo("blh", valid)
        hc = gen.chemistry.hour(hour_index(valid))
        for k, z in enumerate(LEVELS_M[1:], start=1):
            b = aloft.background(species, z, hc)
            excess = c[0] > b + 0.05
            inside = excess & land & (blh > z)
            assert (c[k][inside] < c[0][inside]).all()  # lower than the surface within the layer
            assert (c[k][excess] <= c[k - 1][excess] + 1e-4).all()  # never growing with height
            assert (np.abs(c[k] - b) <= np.abs(c[k - 1] - b) + 1e-4).all()  # always nearer the background
        top = c[-1] - aloft.background(species, 5000, hc)
        assert (np.abs(top[blh < 2500]) < 0.02 * c[0][blh < 2500] + 0.01).all()  # at 5 km: the background


def test_so2_decreases_less_than_no2_within_a_stable_layer(gen, land):
    valid = WINTER + timedelta(hours=2)
    ratio = {
        sp: np.median((_profile(gen, sp, valid)[2] / gen.truth(sp, valid))[land]) for sp in ("no2", "so2")
    }
    assert ratio["no2"] < ratio["so2"] < 1.0, ratio  # 100 m over the surface


def test_the_boundary_layer_height_sets_the_profile():
    """A deeper layer keeps more of the surface's NO2 at 500 m and less of its O3 excess (a member whose
    boundary layer is too deep is wrong aloft in that way); above the layer the excess fades."""
    log_h = np.log(np.array([[200.0, 600.0, 1500.0]], np.float32))
    column = aloft.Column(log_h)
    no2 = column.excess("no2", 500.0)[0]
    assert no2[0] < no2[1] < no2[2] and no2[0] < 0.05 and no2[2] > 0.7
    assert (aloft.Column(log_h).excess("o3", 0.0) == 1.0).all()
    assert (np.diff([aloft.Column(log_h).excess("pm10", z)[0, 0] for z in LEVELS_M]) < 0).all()


def test_members_aloft_run_on_their_own_boundary_layer(gen):
    """A member's error aloft is not its surface error carried up: it holds its boundary-layer error (the
    forecast's with its own bias and error of the run), and the members still differ above the layer."""
    run, lead = SUMMER, 21  # 21 UTC: a shallow evening layer
    valid = run + timedelta(hours=lead)
    present = ~gen.missing_members(run)
    for sp in ("no2", "o3"):
        err = {
            z: np.log(gen.members(sp, run, lead, z)[present] / gen.truth(sp, valid, z))
            for z in (0, 250, 1000)
        }
        for z in (250, 1000):
            assert np.abs(err[z] - err[0]).mean() > 0.05, (sp, z)
            corr = np.corrcoef(err[z].ravel(), err[0].ravel())[0, 1]
            assert corr < 0.95, (sp, z, corr)
        spread = np.std(np.log(gen.members(sp, run, lead, 5000)[present]), axis=0)
        assert np.median(spread) > 0.02
    # the members' heights are the forecast's with their own error: not all equal, not the truth's
    heights = gen.ensemble.forecast_log_heights(run_index(run), lead)
    assert heights.shape == (11, *DEMO.shape) and np.std(heights, axis=0).min() > 0.01
    true_log_blh = np.log(gen.true_meteo("blh", valid))
    assert np.abs(np.median(heights, axis=0) - true_log_blh).mean() > 0.05


def test_the_analysis_aloft_leans_less_on_the_surface_stations(gen):
    """log analysis(z) = ρ·p(z) log truth(z) + (1 − ρ·p(z)) log background(z) + σ(z) ε, p = pull_aloft."""
    assert aloft.pull_aloft(0) == 1.0
    pulls = [aloft.pull_aloft(z) for z in LEVELS_M]
    assert (np.diff(pulls) < 0).all() and pulls[-1] < 0.05
    valid = SUMMER + timedelta(hours=10)
    hour = hour_index(valid)
    for z in (250.0, 2000.0):
        rho = gen._pull("no2", "analysis")[0] * np.float32(aloft.pull_aloft(z))
        assert rho.max() < RHO_MAX * aloft.pull_aloft(z) + 1e-6
        sigma = 0.07 * (0.4 + 0.6 * rho / RHO_MAX)
        want = (
            rho * np.log(gen.truth("no2", valid, z))
            + (1 - rho) * gen._background_aloft("no2", hour, z)
            + sigma * gen._analysis_error("no2", hour, "analysis")
        )
        np.testing.assert_allclose(np.log(gen.analysis("no2", valid, "analysis", z)), want, atol=2e-5)


# ------------------------------------------------------------------------------------------- ingest
def test_synthetic_ingest_writes_every_level(tmp_path, ray_cluster, capsys):
    store = str(tmp_path / "levels.zarr")
    args = ["--no-progress", "synthetic", "--store", store, "--domain", "tiny", "--start", "2025-07-01"]
    args += ["--days", "1", "--leads", "0:24:12", "--seed", "3"]
    assert main([*args, "--levels", "0,37"]) == 2
    assert "level 37 m is not a CAMS level" in capsys.readouterr().err
    assert main([*args, "--levels", "1000,0,500"]) == 0
    assert validate_store(store, deep=True) == []
    attrs = open_store(store).attrs.asdict()
    assert attrs["levels"] == [0, 500, 1000] and attrs["provenance"]["aloft"] == aloft.params()

    gen = SyntheticGenerator(parse_domain("tiny"), seed=3)
    reader = StoreReader(store)
    run, lead = np.datetime64("2025-07-01T00"), 12
    valid = datetime(2025, 7, 1, lead)
    present = ~gen.missing_members(datetime(2025, 7, 1))
    for sp in ("o3", "no2"):
        members = reader.members(sp, run, lead)  # (member, level, lat, lon)
        assert members.shape[1] == 3
        for vi, z in enumerate((0, 500, 1000)):
            np.testing.assert_array_equal(
                members[present, vi], gen.members(sp, datetime(2025, 7, 1), lead, z)[present]
            )
            an = reader.analysis(sp, np.datetime64(valid), level=vi)
            np.testing.assert_array_equal(an, gen.analysis(sp, valid, "analysis", z))
            validated = reader.analysis(sp, np.datetime64(valid), level=vi, target="validated")
            np.testing.assert_array_equal(validated, gen.analysis(sp, valid, "validated", z))
        # a member's error against the analysis aloft is not its surface error
        err = [
            np.log(members[present, vi] / reader.analysis(sp, np.datetime64(valid), level=vi))
            for vi in range(3)
        ]
        assert np.abs(err[2] - err[0]).mean() > 0.02
    # the normalisation covers every level: more values than one level holds
    norm = open_store(store)[FORECASTS].attrs["normalisation"]["no2"]
    assert norm["n"] == present.sum() * 3 * 3 * np.prod(parse_domain("tiny").shape)
