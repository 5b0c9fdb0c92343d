"""The coordinator's store semantics, on a local directory and on S3 over HTTP."""

from datetime import datetime

import numpy as np
import pytest
import zarr

from dlens.common.grid import parse_domain
from dlens.common.layout import ANALYSIS, FORECASTS, Status
from dlens.common.schema import StoreInvalidError, check_store, validate_store
from dlens.common.store import open_dataset
from dlens.common.writer import (
    FieldWriter,
    StoreCoordinator,
    StoreMismatchError,
    StoreSpec,
    field_stats,
)

SPEC = StoreSpec(parse_domain("tiny"), (0, 6, 12), (0,))
RUNS = [datetime(2025, 7, 1), datetime(2025, 7, 2)]


@pytest.fixture(params=["local", "s3"])
def store_url(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "store.zarr")
    return request.getfixturevalue("s3_bucket") + "/store.zarr"


def test_axes_grow_without_duplicates_and_data_round_trips(store_url):
    coord = StoreCoordinator(store_url, SPEC)
    assert coord.ensure_axis(FORECASTS, RUNS) == [0, 1]
    assert coord.ensure_axis(FORECASTS, [RUNS[1], datetime(2025, 7, 3)]) == [1, 2]
    field = np.random.default_rng(0).gamma(2.0, 10.0, size=(11, 1, *SPEC.domain.shape)).astype("float32")
    writer = FieldWriter(store_url)
    for lead_index in range(len(SPEC.leads)):
        writer.write(FORECASTS, "o3", (1, lead_index, slice(None)), field * (lead_index + 1))
    coord.mark(FORECASTS, 1, Status.COMPLETE, (slice(None), 0))
    coord.write_stats(FORECASTS, 1, "o3", field_stats(field))  # one lead's stats stand for the run here
    coord.refresh_normalisation()

    ds = open_dataset(store_url, FORECASTS)
    assert ds["o3"].dims == ("run", "lead", "member", "level", "latitude", "longitude")
    assert [str(r)[:10] for r in ds["run"].values] == ["2025-07-01", "2025-07-02", "2025-07-03"]
    np.testing.assert_array_equal(ds["o3"].sel(run="2025-07-02", lead=12).values, field * 3)
    assert np.isnan(ds["o3"].sel(run="2025-07-01").values).all()
    norm = ds.attrs["normalisation"]["o3"]
    assert norm["n"] == field.size and norm["mean"] == pytest.approx(float(field.mean()), rel=1e-5)
    assert validate_store(store_url, deep=True) == []


def test_reopening_with_another_grid_is_refused(store_url):
    StoreCoordinator(store_url, SPEC)
    other = StoreSpec(parse_domain("demo"), SPEC.leads, SPEC.levels)
    with pytest.raises(StoreMismatchError, match="holds domain"):
        StoreCoordinator(store_url, other)


def test_validate_store_names_each_problem(tmp_path):
    url = str(tmp_path / "store.zarr")
    coord = StoreCoordinator(url, SPEC)
    coord.ensure_axis(ANALYSIS, [datetime(2025, 7, 1, h) for h in range(3)])
    coord.mark(ANALYSIS, 1, Status.COMPLETE, (1,))  # marked complete, never written
    root = zarr.open_group(url, mode="r+")
    del root["meteo/t2m"]
    problems = validate_store(url, deep=True)
    assert "meteo: variable 't2m' is missing" in problems
    assert any(
        p.startswith("analysis/no2 [time=2025-07-01T01") and "marked complete but holds NaN" in p
        for p in problems
    )
    with pytest.raises(StoreInvalidError, match="is invalid"):
        check_store(url)
    assert validate_store(str(tmp_path / "nothing"))[0].startswith("cannot open store")
