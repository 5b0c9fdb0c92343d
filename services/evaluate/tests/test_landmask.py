"""The streaming land-mask reader agrees with global-land-mask itself, with a fraction of its memory."""

import numpy as np

from dlens.evaluate.landmask import is_land


def test_streamed_rows_equal_the_packaged_reader():
    from global_land_mask import globe  # loads the whole 933 MB mask: only here, as the reference

    rng = np.random.default_rng(0)
    lat = rng.uniform(30.0, 72.0, 20_000)
    lon = rng.uniform(-25.0, 45.0, 20_000)
    np.testing.assert_array_equal(is_land(lat, lon), globe.is_land(lat, lon))
    assert is_land(np.array([45.46]), np.array([9.19]))[0]  # Milan
    assert not is_land(np.array([43.0]), np.array([5.0]))[0]  # Gulf of Lion
    assert is_land(np.array([45.46]), np.array([369.19]))[0]  # longitude in [0, 360)
