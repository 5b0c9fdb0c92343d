"""`dlens-train predict`: a registered model's DL-ENS fields written to `products/dlens-<id>`.

One Ray task per run loads the model once and predicts the leads in batches with the members present
(missing members are masked, as in training), reading and assembling the next batch (in a second thread)
while the model runs on one; the coordinator then records which members went into
each (run, species) (`members_used`) and which optional phase-two predictors into each run
(`predictors_used`), and marks it COMPLETE, or ABSENT where no member was there.

Operational mode: a run is predicted as soon as its first members are in, and predicted again when a
later call finds members it did not use (the CAMS timeline delivers the CTMs in groups), or a predictor
that a model trained with predictor dropout went without (the meteo or the analysis arriving late); runs
whose product already used every member and predictor present are skipped. `members` restricts the inputs
to a group (e.g. the early six, product `dlens-<id>-early`) to measure what the first delivery is worth.

A model of several levels (`data.levels`) reads the members at each of them and writes its fields there;
the product is NaN at the store's other levels (and at the leads the model was not trained on).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from dlens.common.config import get_settings
from dlens.common.layout import OPTIONAL_PREDICTORS, Status, product_group
from dlens.common.parallel import FanOutReport, Unit, fan_out
from dlens.common.reader import StoreReader
from dlens.common.species import MEMBER_GROUPS, MEMBERS, SPECIES_NAMES
from dlens.common.writer import FieldWriter, StoreCoordinator
from dlens.model.features import level_blocks, level_positions
from dlens.model.inference import ensemble_inputs, run_model
from dlens.model.predictor_store import missing_predictors, read_predictors, run_predictors
from dlens.model.predictors import MissingPredictor, PredictorEncoder, RawPredictors
from dlens.model.registry import ModelEntry, load_model, resolve
from dlens.model.static import static_fields
from dlens.model.tiling import Tiling, configured_tiling

#: The most leads predicted in one forward pass (fewer on large grids: `leads_per_batch`).
LEAD_BATCH = 8
#: Product array (run, species, member): 1 where the member went into the field, 0 where not.
MEMBERS_USED = "members_used"
#: Product array (run, predictor): 1 where the optional predictor (OPTIONAL_PREDICTORS) went into the run's
#: fields, 0 where not (absent from the store, or not read by the model).
PREDICTORS_USED = "predictors_used"


def product_name(model_id: str, members: Sequence[str] = MEMBERS) -> str:
    """`dlens-<id>` from every member, `dlens-<id>-<group>` from a named group (e.g. early)."""
    for group, names in MEMBER_GROUPS.items():
        if tuple(members) == names:
            return f"dlens-{model_id}" if group == "all" else f"dlens-{model_id}-{group}"
    raise ValueError("a member list that is not a named group needs a product name (--product)")


def usable(reader: StoreReader, species: str, run: np.datetime64, members: Sequence[str]) -> np.ndarray:
    """Boolean (member,): the members of `members` COMPLETE for this run and species."""
    return reader.member_presence(species, run) & np.isin(MEMBERS, members)


def predict_unit(
    url: str,
    model_id: str,
    product: str,
    run: str,
    position: int,
    members: tuple[str, ...],
    per_batch: int = LEAD_BATCH,
    tiling: Tiling | None = None,
) -> dict:
    """Predict one run at every lead of the store the model was trained on (all where its config names
    none) and each of its levels, from the usable members, into `product`, `per_batch` leads per forward
    pass, on `tiling`'s tiles (None: the whole field); return what it used."""
    reader = StoreReader(url)
    entry = resolve(url, model_id)
    model = load_model(url, entry)
    species = entry.species
    positions = level_positions(entry.levels, reader.spec.levels, f"store {url!r}")
    writer = FieldWriter(url)
    t0 = np.datetime64(run, "h")
    # One snapshot of the members present: a member committed meanwhile waits for the next call.
    used = {sp: usable(reader, sp, t0, members) for sp in species}
    present = held_predictors(reader, entry.encoder, t0)
    static = static_fields(reader, entry.static_names)
    shared = run_predictors(reader, entry.encoder, t0)  # the meteo at the run and the recent analysis, once
    # the leads the model was trained on: a model trained on a few does not extrapolate to the others
    leads = [lead for lead in reader.spec.leads if entry.leads is None or lead in entry.leads]
    batches = [leads[i : i + per_batch] for i in range(0, len(leads), per_batch)]
    if not any(u.any() for u in used.values()):
        batches = []
    device = next(model.parameters()).device

    def inputs_of(batch: list[int]) -> torch.Tensor:
        return lead_inputs(reader, entry, t0, batch, positions, used, static, shared, device)

    # the next batch is read and assembled (one thread) while the model runs on this one
    with ThreadPoolExecutor(max_workers=1) as prefetch:
        upcoming = prefetch.submit(inputs_of, batches[0]) if batches else None
        for k, batch in enumerate(batches):
            inputs = upcoming.result()
            if k + 1 < len(batches):
                upcoming = prefetch.submit(inputs_of, batches[k + 1])
            fields = run_model(model, entry, inputs, tiling)
            del inputs
            for b, lead in enumerate(batch):
                lead_pos = reader.spec.leads.index(lead)
                for sp in species:
                    if used[sp].any():
                        # every level of the store at once (one chunk): NaN where the model does not predict
                        stack = np.full((len(reader.spec.levels), *fields.shape[-2:]), np.nan, np.float32)
                        for level, at in zip(entry.levels, positions):
                            stack[at] = fields[b, entry.block(sp, level)]
                        writer.write(f"products/{product}", sp, (position, lead_pos), stack)
    return {"run": run, "used": {sp: used[sp].tolist() for sp in species}, "predictors": present.tolist()}


def lead_inputs(
    reader: StoreReader,
    entry: ModelEntry,
    run: np.datetime64,
    leads: list[int],
    positions: tuple[int, ...],
    used: dict[str, np.ndarray],
    static: np.ndarray,
    shared: RawPredictors | None,
    device: torch.device | str,
) -> torch.Tensor:
    """The model's inputs for a batch of `leads` of `run`: the members (at the store's level `positions`; NaN
    where not `used`, per species) and the encoded predictors read from the store, assembled on `device`."""
    members = np.stack(
        [
            level_blocks(np.stack([reader.members(sp, run, lead) for sp in entry.species]), positions)
            for lead in leads
        ]
    )  # (lead, block, member, H, W)
    for k, sp in enumerate(entry.block_species):
        members[:, k, ~used[sp]] = np.nan
    valid = [run + np.timedelta64(lead, "h") for lead in leads]
    encoded = np.stack([store_predictors(reader, entry, run, lead, shared) for lead in leads])
    return ensemble_inputs(entry, members, static, leads, valid, encoded, device)


def leads_per_batch(shape: tuple[int, int], cells: int) -> int:
    """Leads per forward pass on a field of `shape`: `LEAD_BATCH`, fewer where they would exceed `cells`
    (DLENS_INFERENCE_BATCH_CELLS), at least one."""
    return max(1, min(LEAD_BATCH, cells // (shape[0] * shape[1])))


def held_predictors(reader: StoreReader, encoder: PredictorEncoder, run: np.datetime64) -> np.ndarray:
    """Boolean (predictor,) in OPTIONAL_PREDICTORS order: those the model reads that the store holds for `run`
    (from the ingest status)."""
    missing = missing_predictors(reader, encoder, run)
    return np.array([n in encoder.predictors.optional and n not in missing for n in OPTIONAL_PREDICTORS])


def store_predictors(
    reader: StoreReader, entry: ModelEntry, run: np.datetime64, lead: int, shared: RawPredictors | None = None
) -> np.ndarray:
    """The model's encoded predictors of (run, lead) from the store (`shared`: `run_predictors` of the run,
    read here when not given); ValueError naming the run and the predictor the store lacks (a model trained
    with predictor dropout runs without it)."""
    domain = reader.spec.domain
    raw = read_predictors(reader, entry.encoder, run, lead, shared)
    try:
        return entry.encoder.encode(
            raw, entry.normaliser.forward, run + np.timedelta64(lead, "h"), domain.latitude, domain.longitude
        )
    except MissingPredictor as exc:
        raise ValueError(
            f"run {run}, lead {lead} h: model {entry.model_id} needs {exc.described}, which store "
            f"{reader.url!r} lacks"
        ) from None


def stale_runs(
    reader: StoreReader,
    product: str,
    entry: ModelEntry,
    runs: Sequence[np.datetime64],
    members: Sequence[str],
) -> list[np.datetime64]:
    """The runs whose product is missing, or was made without a member or an optional predictor now
    present."""
    path = product_group(product).path
    species = entry.species

    def read(name: str) -> np.ndarray | None:  # read once
        return reader.root[f"{path}/{name}"][:] if reader.has(f"{path}/{name}") else None

    recorded, predictors = (
        read(MEMBERS_USED),
        read(PREDICTORS_USED),
    )  # (run, species, member), (run, predictor)

    def stale(run: np.datetime64) -> bool:
        if recorded is None or any(
            reader.product_status(product, sp, run) == Status.PENDING for sp in species
        ):
            return True
        pos = reader.axis(path)[np.datetime64(run, "h")]
        before = recorded[pos] == 1  # (species, member)
        if any((usable(reader, sp, run, members) & ~before[SPECIES_NAMES.index(sp)]).any() for sp in species):
            return True
        if not entry.predictors.optional:
            return False
        had = np.zeros(len(OPTIONAL_PREDICTORS), bool) if predictors is None else predictors[pos] == 1
        return bool((held_predictors(reader, entry.encoder, run) & ~had).any())

    return [r for r in runs if stale(r)]


def predict(
    url: str,
    model_id: str,
    runs: Sequence[np.datetime64],
    members: Sequence[str] = MEMBERS,
    product: str | None = None,
    batch_cells: int | None = None,
) -> tuple[str, list[np.datetime64], FanOutReport]:
    """Write the product of model `model_id` (or `latest`) for the stale `runs` from `members`; return its
    name, the runs (re)predicted and the report. The inference settings (`batch_cells`, default
    DLENS_INFERENCE_BATCH_CELLS; the tiling) are this process's, passed to the Ray tasks."""
    entry = resolve(url, model_id)
    name = product or product_name(entry.model_id, members)
    reader = StoreReader(url)
    try:  # before anything is written
        level_positions(entry.levels, reader.spec.levels, f"store {url!r}")
    except ValueError as exc:
        levels = ", ".join(map(str, entry.levels))
        raise ValueError(f"model {entry.model_id} predicts levels {levels} m: {exc}") from None
    todo = stale_runs(reader, name, entry, runs, members)
    if not todo:
        return name, [], FanOutReport()
    coordinator = StoreCoordinator(url)
    path = coordinator.ensure_product(name)
    coordinator.update_attrs(
        path, description=f"DL-ENS model {entry.model_id} from {', '.join(members)}", model_id=entry.model_id,
        members=list(members),
    )  # fmt: skip
    positions = coordinator.ensure_axis(path, [r.astype("datetime64[s]").astype(object) for r in todo])
    record = coordinator.ensure_axis_array(path, MEMBERS_USED, ("run", "species", "member"))
    record_predictors = coordinator.ensure_axis_array(path, PREDICTORS_USED, ("run", "predictor"))
    # Readers trust only COMPLETE cells: a run being predicted again is PENDING until its new fields are in.
    coordinator.mark(path, positions, int(Status.PENDING))

    def commit(result: dict) -> None:
        pos = positions[todo.index(np.datetime64(result["run"], "h"))]
        record_predictors[pos] = np.asarray(result["predictors"], dtype=np.float32)
        for sp, used in result["used"].items():
            k = SPECIES_NAMES.index(sp)
            record[pos, k] = np.asarray(used, dtype=np.float32)
            coordinator.mark(path, pos, int(Status.COMPLETE if any(used) else Status.ABSENT), (k,))

    settings = get_settings()
    tiling = configured_tiling(settings.inference_tile, settings.inference_overlap)
    per_batch = leads_per_batch(reader.spec.domain.shape, batch_cells or settings.inference_batch_cells)
    units = [
        Unit(
            f"predict {np.datetime64(r, 'D')}",
            predict_unit,
            (url, entry.model_id, name, str(r), p, tuple(members), per_batch, tiling),
        )
        for r, p in zip(todo, positions)
    ]
    return name, todo, fan_out(units, commit, desc=f"predict {name}")
