"""The phase-two predictors of the model runtime: channels, encoding, member statistics, solar zenith angle,
and registry entries from before them."""

import warnings

import numpy as np
import pytest

from dlens.model.features import Normaliser, channel_names
from dlens.model.inference import ensemble, model_inputs
from dlens.model.predictors import (
    METEO_NAMES,
    MissingPredictor,
    PredictorEncoder,
    Predictors,
    RawPredictors,
    Standardisation,
    encoded_names,
)
from dlens.model.registry import ModelEntry, entries, load_model, write_entry
from dlens.model.solar import cos_zenith

SPECIES = ("o3", "no2")
NORM = Normaliser({"o3": 3.5, "no2": 2.8}, {"o3": 0.6, "no2": 0.9})
LAT, LON = np.linspace(44.05, 44.55, 6), np.linspace(7.05, 7.75, 8)
VALID = np.datetime64("2025-07-01T12")
ALL = Predictors(meteo=True, meteo_change=True, recent_analysis=True, zenith=True, statistics=True)
STATS = Standardisation(
    {v: {"mean": 10.0 * i, "std": 2.0 + i} for i, v in enumerate(METEO_NAMES)},
    {v: {"mean": 0.5, "std": 1.0 + i} for i, v in enumerate(METEO_NAMES)},
)


def raw(rng, hours: int) -> RawPredictors:
    fields = rng.normal(size=(len(METEO_NAMES), 6, 8)) * 10
    return RawPredictors(fields, fields - 3.0, rng.gamma(4.0, 10.0, size=(len(SPECIES), hours, 6, 8)))


def zenith_degrees(valid: str, lat: float, lon: float) -> float:
    return float(
        np.degrees(np.arccos(cos_zenith(np.datetime64(valid), np.array([lat]), np.array([lon]))[0, 0]))
    )


@pytest.mark.parametrize(
    ("valid", "lat", "expected"),
    [
        ("2025-06-21T12", 48.85, 48.85 - 23.44),  # summer solstice, solar noon at 0° E: φ − δ
        ("2025-12-21T12", 48.85, 48.85 + 23.44),  # winter solstice
        ("2025-06-21T12", 23.44, 0.0),  # the sun overhead on the Tropic of Cancer
        ("2025-12-21T12", -23.44, 0.0),  # and on the Tropic of Capricorn
    ],
)
def test_zenith_angle_at_solar_noon_is_latitude_minus_declination(valid, lat, expected):
    # At solar noon the zenith angle is |φ − δ| (δ = ±23.44° at the solstices); at 0° E solar noon is 12 UTC
    # within the equation of time (≤ 2 min near the solstices: ≤ 0.5°).
    assert zenith_degrees(valid, lat, 0.0) == pytest.approx(expected, abs=0.5)


def test_zenith_angle_follows_the_sun_west_and_at_night():
    assert zenith_degrees("2025-06-21T00", 48.85, 0.0) == pytest.approx(90 + 90 - 48.85 - 23.44, abs=0.5)
    # 15° of longitude is an hour: at 13 UTC the sun is over 15° W
    assert zenith_degrees("2025-06-21T13", 23.44, -15.0) == pytest.approx(0.0, abs=0.6)


def test_encoded_channels_follow_their_names_with_every_predictor_on():
    rng = np.random.default_rng(0)
    encoder = PredictorEncoder(ALL, SPECIES, STATS)
    given = raw(rng, len(ALL.analysis_hours))
    out = encoder.encode(given, NORM.forward, VALID, LAT, LON)
    names = encoded_names(SPECIES, ALL)
    assert out.shape == (len(names), 6, 8) and out.dtype == np.float32 and np.isfinite(out).all()
    assert len(names) == 2 * len(METEO_NAMES) + len(SPECIES) * 8 + 1  # 24 h every 3 h: 8 hours a species
    channel = dict(zip(names, out))
    np.testing.assert_allclose(channel["meteo:blh"], (given.meteo[1] - 10.0) / 3.0, rtol=1e-5)
    np.testing.assert_allclose(channel["meteo_change:ssrd"], (3.0 - 0.5) / 5.0, rtol=1e-5)
    # the hours, oldest first: 22, 19, …, 1 h before the run (the delay is 1 h)
    assert ALL.analysis_hours == (22, 19, 16, 13, 10, 7, 4, 1)
    np.testing.assert_allclose(channel["analysis:no2:-4h"], NORM.forward("no2", given.recent_analysis[1, 6]))
    np.testing.assert_allclose(channel["zenith:cos"], cos_zenith(VALID, LAT, LON))


@pytest.mark.parametrize("name", ["meteo", "meteo_change", "recent_analysis"])
def test_a_missing_predictor_is_named_unless_trained_with_dropout(name):
    rng = np.random.default_rng(1)
    full = raw(rng, len(ALL.analysis_hours))
    lacking = RawPredictors(
        None if name == "meteo" else full.meteo,
        None if name == "meteo_change" else full.meteo_at_run,
        None if name == "recent_analysis" else full.recent_analysis,
    )
    with pytest.raises(MissingPredictor, match=f"'{name}'"):
        PredictorEncoder(ALL, SPECIES, STATS).encode(lacking, NORM.forward, VALID, LAT, LON)
    dropout = ALL.model_copy(update={"dropout": 0.2})
    out = PredictorEncoder(dropout, SPECIES, STATS).encode(lacking, NORM.forward, VALID, LAT, LON)
    channel = dict(zip(encoded_names(SPECIES, dropout), out))
    absent = {name, "meteo_change"} if name == "meteo" else {name}  # the change needs the meteo too
    for other in dropout.optional:
        assert (channel[f"present:{other}"] == float(other not in absent)).all(), other
    if name == "recent_analysis":
        assert (channel["analysis:o3:-22h"] == 0).all()


def test_member_statistics_are_nan_aware_min_max_and_quantiles():
    rng = np.random.default_rng(2)
    members = rng.gamma(4.0, 10.0, size=(2, 11, 6, 8)).astype(np.float32)
    members[:, [1, 4, 9]] = np.nan  # three members absent
    members[1, :, 0, 0] = np.nan  # no member at all in one cell
    predictors = Predictors(statistics=True, quantiles=(0.1, 0.5, 0.9))
    inputs, _ = model_inputs(
        members[None], SPECIES, NORM, np.zeros((0, 6, 8)), [12], [VALID], quantiles=predictors.quantiles
    )
    names = channel_names(SPECIES, (), predictors)
    channel = dict(zip(names, inputs[0].numpy()))
    z = np.stack([NORM.forward(sp, members[k]) for k, sp in enumerate(SPECIES)])
    z[~np.isfinite(members)] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = {
            "min": np.nanmin(z, axis=1), "max": np.nanmax(z, axis=1),
            **{f"q{q:g}": np.nanquantile(z, q, axis=1) for q in predictors.quantiles},
        }  # fmt: skip
    for k, sp in enumerate(SPECIES):
        for stat, values in expected.items():
            np.testing.assert_allclose(channel[f"{sp}:{stat}"], np.nan_to_num(values[k]), atol=1e-5)
    assert channel["no2:q0.5"][0, 0] == 0.0 and channel["no2:median"][0, 0] == 0.0
    np.testing.assert_allclose(channel["o3:q0.5"], channel["o3:median"], atol=1e-5)


def test_predictors_config_checks_its_window_and_quantiles():
    with pytest.raises(ValueError, match="multiple"):
        Predictors(analysis_window_h=24, analysis_step_h=5)
    with pytest.raises(ValueError, match="quantiles"):
        Predictors(quantiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="analysis_delay_h"):
        Predictors(analysis_delay_h=0)  # the analysis at the run is the target at lead 0
    assert Predictors(analysis_delay_h=6, analysis_window_h=12, analysis_step_h=6).analysis_hours == (12, 6)


def test_an_entry_from_before_the_predictors_reads_none_and_predicts(tmp_path):
    card = {
        "id": "old", "created": "2025-01-01T00:00:00+00:00", "architecture": "HalfUNet",
        "config": {
            "data": {"species": list(SPECIES), "static": True},
            "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}, "head": "mixture"},
        },
        "normaliser": {"log1p_mean": NORM.log1p_mean, "log1p_std": NORM.log1p_std},
        "input_channels": channel_names(SPECIES, ()), "input_shape": [6, 8],
    }  # fmt: skip
    url = str(tmp_path / "store")
    write_entry(url, "old", card, ModelEntry("old", card).build().state_dict())  # the card as it was written
    (entry,) = entries(url)
    assert entry.predictors == Predictors() and not entry.predictors.optional
    assert channel_names(SPECIES, (), entry.predictors) == card["input_channels"]
    encoded = entry.encoder.encode(RawPredictors(), NORM.forward, VALID, LAT, LON)
    assert encoded.shape == (0, 6, 8)
    members = np.random.default_rng(3).gamma(4.0, 10.0, size=(1, 2, 11, 6, 8)).astype(np.float32)
    model, static = load_model(url, entry), np.zeros((0, 6, 8))
    before = ensemble(model, entry, members, static, [12], [VALID])  # as predict and serve called it
    np.testing.assert_array_equal(
        ensemble(model, entry, members, static, [12], [VALID], encoded[None]), before
    )
    assert before.shape == (1, 2, 6, 8) and np.isfinite(before).all()


def meteo_card(recorded: tuple[str, ...]) -> dict:
    """The card of a model with the meteo predictors that recorded the meteo variables `recorded`."""
    predictors = Predictors(meteo=True, meteo_change=True)
    channels = encoded_names(SPECIES, predictors, recorded)
    stats = {name: {v: {"mean": 1.0, "std": 2.0} for v in recorded} for name in ("meteo", "meteo_change")}
    return {
        "id": "met", "created": "2025-01-01T00:00:00+00:00", "architecture": "HalfUNet",
        "config": {
            "data": {"species": list(SPECIES), "static": False, "predictors": predictors.model_dump(mode="json")},
            "model": {"architecture": "HalfUNet", "settings": {"num_filters": 8}, "head": "mixture"},
        },
        "normaliser": {"log1p_mean": NORM.log1p_mean, "log1p_std": NORM.log1p_std},
        "input_channels": channel_names(SPECIES, (), predictors, recorded), "input_shape": [6, 8],
        "predictors": {"channels": channels, "normalisation": stats},
    }  # fmt: skip


def test_a_model_reads_the_meteo_variables_its_card_recorded(tmp_path):
    # a model trained when the layout had two meteo variables reads those two, whatever the layout has now
    recorded = ("blh", "t2m")
    card = meteo_card(recorded)
    url = str(tmp_path / "store")
    write_entry(url, "met", card, ModelEntry("met", card).build().state_dict())
    (entry,) = entries(url)
    assert entry.meteo_names == recorded and entry.encoder.names == card["predictors"]["channels"]
    rng = np.random.default_rng(4)
    meteo = rng.normal(size=(2, 6, 8))
    encoded = entry.encoder.encode(RawPredictors(meteo, meteo - 1.0), NORM.forward, VALID, LAT, LON)
    assert encoded.shape == (4, 6, 8)
    np.testing.assert_allclose(encoded[0], (meteo[0] - 1.0) / 2.0, rtol=1e-6)  # blh, as recorded first
    model = load_model(url, entry)  # the card's channels rebuild
    members = rng.gamma(4.0, 10.0, size=(1, 2, 11, 6, 8)).astype(np.float32)
    out = ensemble(model, entry, members, np.zeros((0, 6, 8)), [12], [VALID], encoded[None])
    assert out.shape == (1, 2, 6, 8) and np.isfinite(out).all()
    # inputs without the predictor channels, or with other ones, are refused before the model runs
    for wrong in (None, encoded[None, :3], np.zeros((1, 2 * len(METEO_NAMES), 6, 8))):
        with pytest.raises(ValueError, match="reads 4 encoded predictor channels"):
            ensemble(model, entry, members, np.zeros((0, 6, 8)), [12], [VALID], wrong)


def test_a_card_whose_channels_do_not_rebuild_is_refused_on_load(tmp_path):
    card = meteo_card(("t2m", "blh"))
    weights = ModelEntry("met", card).build().state_dict()
    card["input_channels"][-1] = "meteo_change:ssrd"  # not what its predictors make
    url = str(tmp_path / "store")
    write_entry(url, "met", card, weights)
    (entry,) = entries(url)
    with pytest.raises(ValueError, match=r"model met: the .* input channels rebuilt from its card differ"):
        load_model(url, entry)
