"""StoreReader: only committed cells are read, and a sample's concurrent reads match the one-by-one ones."""

from datetime import datetime

import numpy as np

from dlens.common.layout import ANALYSIS, Status
from dlens.common.reader import StoreReader
from dlens.common.writer import StoreCoordinator
from dlens.testing.mock_store import MockSkill, build_mock_store

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
