"""`dlens-train predict`: a registered model's DL-ENS fields written to `products/dlens-<id>`.

One Ray task per run loads the model once and predicts the leads in batches with the members present
(missing members are masked, as in training); the coordinator then marks each (run, species)
COMPLETE, or ABSENT where no member was there. Runs already COMPLETE are skipped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlens.common.layout import Status
from dlens.common.model.inference import ensemble
from dlens.common.model.registry import load_model, resolve
from dlens.common.model.static import static_fields
from dlens.common.parallel import FanOutReport, Unit, fan_out
from dlens.common.reader import StoreReader
from dlens.common.species import SPECIES_NAMES
from dlens.common.writer import FieldWriter, StoreCoordinator

#: Leads predicted in one forward pass.
LEAD_BATCH = 8


def product_name(model_id: str) -> str:
    return f"dlens-{model_id}"


def predict_unit(url: str, model_id: str, run: str, position: int) -> dict:
    """Predict every lead of one run; return the status per species."""
    reader = StoreReader(url)
    entry = resolve(url, model_id)
    model = load_model(url, entry)
    species = entry.species
    writer = FieldWriter(url)
    t0 = np.datetime64(run, "h")
    present = {sp: bool(reader.member_presence(sp, t0).any()) for sp in species}
    static = static_fields(reader, entry.static_names)
    leads = list(reader.spec.leads)
    for start in range(0, len(leads) if any(present.values()) else 0, LEAD_BATCH):
        batch = leads[start : start + LEAD_BATCH]
        members = np.stack(
            [np.stack([reader.members(sp, t0, lead)[:, 0] for sp in species]) for lead in batch]
        )
        fields = ensemble(
            model, entry, members, static, batch, [t0 + np.timedelta64(lead, "h") for lead in batch]
        )
        for b, lead_pos in enumerate(range(start, start + len(batch))):
            for k, sp in enumerate(species):
                if present[sp]:
                    writer.write(
                        f"products/{product_name(model_id)}", sp, (position, lead_pos, 0), fields[b, k]
                    )
    return {
        "run": run,
        "status": {sp: int(Status.COMPLETE if present[sp] else Status.ABSENT) for sp in species},
    }


def predict(url: str, model_id: str, runs: Sequence[np.datetime64]) -> tuple[str, FanOutReport]:
    """Write the product of model `model_id` (or `latest`) for `runs`; return its name and the report."""
    entry = resolve(url, model_id)
    name = product_name(entry.model_id)
    reader = StoreReader(url)
    todo = [
        r for r in runs
        if any(reader.product_status(name, sp, r) == Status.PENDING for sp in entry.species)
    ]  # fmt: skip
    if not todo:
        return name, FanOutReport()
    coordinator = StoreCoordinator(url)
    path = coordinator.ensure_product(name)
    coordinator.update_attrs(path, description=f"DL-ENS model {entry.model_id}", model_id=entry.model_id)
    positions = coordinator.ensure_axis(path, [r.astype("datetime64[s]").astype(object) for r in todo])

    def commit(result: dict) -> None:
        pos = positions[todo.index(np.datetime64(result["run"], "h"))]
        for sp, code in result["status"].items():
            coordinator.mark(path, pos, code, (SPECIES_NAMES.index(sp),))

    units = [
        Unit(f"predict {np.datetime64(r, 'D')}", predict_unit, (url, entry.model_id, str(r), p))
        for r, p in zip(todo, positions)
    ]
    return name, fan_out(units, commit, desc=f"predict {entry.model_id}")
