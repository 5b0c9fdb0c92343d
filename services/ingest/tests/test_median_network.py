"""The members' median by a sorting network equals numpy's, for every count of members present."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from dlens.ingest.synthetic.median import _median_network, _merge_sort_network, median_of_stack
from dlens.ingest.synthetic.members import member_median


@pytest.mark.parametrize("n", range(1, 13))
def test_the_network_sorts_every_input(n):
    """The 0-1 principle: a comparator network sorts every input if it sorts every sequence of 0s and 1s."""
    for bits in itertools.product((0, 1), repeat=n):
        values = list(bits)
        for low, high in _merge_sort_network(n):
            if values[low] > values[high]:
                values[low], values[high] = values[high], values[low]
        assert values == sorted(bits)
    assert len(_median_network(n)) <= len(_merge_sort_network(n))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", range(1, 13))
def test_median_of_stack_is_numpys_median(n, dtype):
    fields = np.random.default_rng(n).gamma(2.0, 10.0, (n, 75, 61)).astype(dtype)
    fields[:, :5] = np.round(fields[:, :5])  # ties
    expected = np.median(fields, axis=0)
    got = median_of_stack(fields)
    assert got.dtype == dtype and got.shape == (75, 61)
    np.testing.assert_array_equal(got, expected.astype(dtype))


def test_member_median_leaves_out_the_members_missing():
    fields = np.random.default_rng(0).random((11, 40, 30), dtype=np.float32)
    fields[[2, 7]] = np.nan
    np.testing.assert_array_equal(
        member_median(fields), np.median(fields[[k for k in range(11) if k not in (2, 7)]], axis=0)
    )
    assert np.isnan(member_median(np.full((11, 4, 3), np.nan, np.float32))).all()
