"""StoreReader: only committed cells are read, and a sample's concurrent reads match the one-by-one ones."""

from datetime import datetime

import numpy as np

from dlens.common.layout import ANALYSIS, Status
from dlens.common.reader import StoreReader
from dlens.common.writer import StoreCoordinator
from dlens.testing.mock_store import MockSkill, build_mock_store, level_factor

SPECIES = ("o3", "no2", "pm10")


def test_a_sample_reads_what_members_and_analysis_read(tmp_path):
    url = str(tmp_path / "store.zarr")
    spec = build_mock_store(
        url, datetime(2025, 3, 1), days=3, leads=(0, 24), skill=MockSkill(absent=((1, 4),))
    )
    uncommitted = np.datetime64("2025-03-03T00", "h")  # the analysis of run 2 at +24 h, of run 3 at +0 h
    reader = StoreReader(url)
    StoreCoordinator(url, spec).mark(ANALYSIS, reader.axis(ANALYSIS)[uncommitted], Status.PENDING, (1,))
    reader = StoreReader(url)  # NO2 is pending at that time now
    for run in (np.datetime64("2025-03-02T00", "h"), np.datetime64("2025-03-03T00", "h")):
        for lead in (0, 24):
            members, analysis = reader.sample(SPECIES, run, lead)
            valid = run + np.timedelta64(lead, "h")
            for k, sp in enumerate(SPECIES):
                np.testing.assert_array_equal(members[k], reader.members(sp, run, lead))
                expected = reader.analysis(sp, valid)
                assert (analysis[k] is None) == (expected is None)
                if expected is not None:
                    np.testing.assert_array_equal(analysis[k], expected)
            assert (analysis[1] is None) == (valid == uncommitted)
    members, _ = reader.sample(SPECIES, np.datetime64("2025-03-02T00", "h"), 24)
    assert np.isnan(members[:, 4]).all() and np.isfinite(members[:, [0, 1, 2, 3, 5]]).all()


def test_a_multi_level_mock_store_reads_back_level_by_level(tmp_path):
    """`build_mock_store(levels=…)`: every level is written and read back; the first level is the default
    store's, bit for bit; above it the truth follows `level_factor` and the members err on it."""
    start, leads = datetime(2025, 3, 1), (0, 24)
    single, multi = str(tmp_path / "one.zarr"), str(tmp_path / "three.zarr")
    build_mock_store(single, start, days=2, leads=leads)
    spec = build_mock_store(multi, start, days=2, leads=leads, levels=(0, 500, 1000))
    assert spec.levels == (0, 500, 1000)
    one, three = StoreReader(single), StoreReader(multi)
    run, valid = np.datetime64("2025-03-02T00", "h"), np.datetime64("2025-03-03T00", "h")
    for sp in ("o3", "no2"):
        members = three.members(sp, run, 24)
        assert members.shape[1] == 3 and np.isfinite(members).all()
        np.testing.assert_array_equal(members[:, :1], one.members(sp, run, 24))
        np.testing.assert_array_equal(three.analysis(sp, valid, level=0), one.analysis(sp, valid, level=0))
        surface = three.analysis(sp, valid, level=0)
        for vi, z in enumerate((500, 1000), start=1):
            np.testing.assert_allclose(
                three.analysis(sp, valid, level=vi), level_factor(sp, z) * surface, rtol=1e-6
            )
            error = members[:, vi] / three.analysis(sp, valid, level=vi) - 1
            assert 0.02 < np.abs(error).mean() < 0.5 and not np.allclose(error, members[:, 0] / surface - 1)
    assert level_factor("o3", 1000) > 1 > level_factor("no2", 1000)
