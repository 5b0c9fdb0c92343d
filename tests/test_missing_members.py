"""DL-ENS trained on the synthetic generator stays finite and beats the median of the members present
when one or several members are absent (the operational product runs before every CTM has arrived)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pytest

from dlens.common.reader import StoreReader
from dlens.common.species import MEMBERS
from dlens.model.inference import ensemble
from dlens.model.registry import load_model, resolve
from dlens.model.static import static_fields
from dlens.train.config import TrainConfig
from dlens.train.fit import fit

SPECIES = ["o3", "no2", "so2", "pm10"]
CONFIG = {
    "name": "absent-members",
    "data": {
        "species": SPECIES,
        "train": {"start": "2025-06-01", "end": "2025-06-30"},
        "validation": {"start": "2025-07-01", "end": "2025-07-01"},
        "test": {"start": "2025-07-02", "end": "2025-07-04"},
        "member_dropout": 0.3,
    },
    "model": {"architecture": "HalfUNet", "settings": {"num_filters": 16}},
    "optim": {"epochs": 8, "batch_size": 8, "learning_rate": 0.003},
}
#: Absence patterns: none, one member, and the five CTMs that arrive after the first six operationally.
ABSENT = {
    "none": (),
    "one": ("emep",),
    "five": ("dehm", "gemaq", "match", "minni", "monarch"),
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, synthetic_store) -> tuple[str, str]:
    """A model fitted on a copy of the session's synthetic store (runs 2025-06-01 to 07-08, tiny domain)."""
    store = str(tmp_path_factory.mktemp("absent") / "synthetic.zarr")
    shutil.copytree(synthetic_store, store)
    return store, fit(store, TrainConfig.model_validate(CONFIG), workers=1, storage=str(store) + "-ray")


def _rmse_with_absent(store: str, model_id: str, absent: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    """(RMSE of DL-ENS, RMSE of the median of the members present) per species over the test period."""
    reader, entry = StoreReader(store), resolve(store, model_id)
    model, static = load_model(store, entry), static_fields(reader, entry.static_names)
    gone = [MEMBERS.index(m) for m in absent]
    sums = {sp: np.zeros(3) for sp in SPECIES}  # DL-ENS sse, median sse, count
    for day in ("2025-07-02", "2025-07-03", "2025-07-04"):
        run = np.datetime64(f"{day}T00", "h")
        for lead in reader.spec.leads:
            valid = run + np.timedelta64(lead, "h")
            members = np.stack([reader.members(sp, run, lead)[:, 0] for sp in SPECIES])
            members[:, gone] = np.nan
            dlens = ensemble(model, entry, members[None], static, [lead], [valid])[0]
            assert np.isfinite(dlens).all() and (dlens >= 0).all()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                median = np.nanmedian(members, axis=1)
            for k, sp in enumerate(SPECIES):
                truth = reader.analysis(sp, valid)[0]
                ok = np.isfinite(truth) & np.isfinite(median[k])
                sums[sp] += [
                    ((dlens[k] - truth)[ok] ** 2).sum(),
                    ((median[k] - truth)[ok] ** 2).sum(),
                    ok.sum(),
                ]
    return {sp: (float(np.sqrt(s[0] / s[2])), float(np.sqrt(s[1] / s[2]))) for sp, s in sums.items()}


@pytest.mark.slow
@pytest.mark.parametrize("pattern", list(ABSENT))
def test_dlens_beats_the_median_of_the_members_present(trained, pattern):
    store, model_id = trained
    scores = _rmse_with_absent(store, model_id, ABSENT[pattern])
    worse = {sp: s for sp, s in scores.items() if not s[0] < s[1]}
    assert not worse, (
        f"with {pattern} absent, DL-ENS is not better than the median for {worse}; all: {scores}"
    )
