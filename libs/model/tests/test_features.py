"""Model inputs from raw members: normalisation, channel layout, median."""

import warnings

import numpy as np
import pytest
import torch

from dlens.model.features import Normaliser, channel_names, member_median
from dlens.model.inference import model_inputs

SPECIES = ("o3", "no2")
NORM = Normaliser({"o3": 3.5, "no2": 2.8}, {"o3": 0.6, "no2": 0.9})


def members(rng, absent=()) -> np.ndarray:
    x = rng.gamma(4.0, 10.0, size=(2, 11, 6, 8)).astype(np.float32)
    x[:, list(absent)] = np.nan
    return x


def test_normaliser_round_trips_and_is_finite_at_zero():
    x = np.array([0.0, 0.5, 40.0, 300.0])
    np.testing.assert_allclose(NORM.inverse("o3", NORM.forward("o3", x)), x, rtol=1e-5, atol=1e-5)
    assert np.isfinite(NORM.forward("no2", np.zeros(3))).all()


@pytest.mark.parametrize("absent", [0, 1, 6, 10, 11])
def test_member_median_is_nanmedian_with_zero_where_no_member_is_present(absent):
    rng = np.random.default_rng(absent)
    z = rng.normal(size=(3, 2, 11, 6, 8)).astype(np.float32)  # batch, species, member, H, W
    z[:, :, rng.permutation(11)[:absent]] = np.nan
    z[rng.random(z.shape) < 0.1] = np.nan  # scattered missing cells too
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nan_to_num(np.nanmedian(z, axis=2))
    tensor = torch.from_numpy(z)
    np.testing.assert_allclose(member_median(tensor, torch.isfinite(tensor)).numpy(), expected, atol=1e-6)


def test_inputs_follow_the_channel_names_and_mark_absent_members():
    rng = np.random.default_rng(0)
    raw = members(rng, absent=(2, 7))
    static = rng.random((2, 6, 8))
    inputs, median = model_inputs(raw[None], SPECIES, NORM, static, [36], [np.datetime64("2025-07-01T12")])
    inputs, median = inputs[0].numpy(), median[0].numpy()
    names = channel_names(SPECIES, ("land_sea_mask", "orography"))
    assert inputs.shape == (len(names), 6, 8) and np.isfinite(inputs).all()
    channel = {name: inputs[i] for i, name in enumerate(names)}
    assert (channel["o3:present:emep"] == 0).all() and (channel["o3:emep"] == 0).all()
    assert (channel["no2:present:chimere"] == 1).all()
    present = [m for m in range(11) if m not in (2, 7)]
    expected = np.median(NORM.forward("no2", raw[1, present]), axis=0)
    np.testing.assert_allclose(median[1], expected, rtol=1e-5)
    np.testing.assert_allclose(channel["no2:median"], expected, rtol=1e-5)
    spread = np.std(NORM.forward("no2", raw[1, present]), axis=0)
    np.testing.assert_allclose(channel["no2:spread"], spread, rtol=1e-4, atol=1e-6)
    assert channel["time:lead"][0, 0] == pytest.approx(36 / 96)
    assert channel["time:hour_sin"][0, 0] == pytest.approx(np.sin(np.pi), abs=1e-6)  # 12 UTC
