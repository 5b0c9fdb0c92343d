"""Computing the baseline products (median, mean, weighted, best member, the learned mos and emos, and the
persistence and climatology references) into the store.

Fan-outs over Ray tasks, one run per task and one field in memory at a time:
1. history: for the runs the trailing windows need, each member's squared-error sums per lead block
   (only when a weighted product is missing) and what mos and emos fit on (only when one is missing);
2. products: each task combines the members of one run, lead by lead, and writes the fields.
Between them the coordinator (this process) fits each run's weights and coefficients and stores them in
the product's group; after them it marks each (run, species) COMPLETE, or ABSENT where no member was
there; cells already COMPLETE are never recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from dlens.common.config import get_settings
from dlens.common.layout import Status
from dlens.common.logging import get_logger
from dlens.common.parallel import Unit, fan_out
from dlens.common.reader import StoreReader
from dlens.common.species import EARLY_MEMBERS, LEAD_BLOCKS, MEMBERS, SPECIES_NAMES, lead_block
from dlens.common.writer import FieldWriter, StoreCoordinator
from dlens.evaluate import ensembles
from dlens.evaluate.emos import EmosCoefficients, fit_emos
from dlens.evaluate.history import RunHistory, run_history_unit
from dlens.evaluate.mos import MosCoefficients, fit_mos
from dlens.evaluate.references import DESCRIPTIONS as REFERENCE_DESCRIPTIONS
from dlens.evaluate.references import REFERENCES, hourly_fields
from dlens.evaluate.regions import partition_for
from dlens.evaluate.weights import MemberSkill, block_lag_days, inverse_mse_weights

log = get_logger(__name__)

#: Baselines from the members alone, and those that also take trailing-skill weights (stored beside them).
COMBINERS = {"median": ensembles.median, "mean": ensembles.mean, "median-early": ensembles.median}
#: Baselines that combine a subset of the members: the first group the operational timeline delivers.
SUBSETS = {"median-early": EARLY_MEMBERS}
WEIGHTED_COMBINERS = {
    "weighted": ensembles.weighted,
    "weighted-regions": ensembles.weighted,
    "best-member": ensembles.best_member,
}
#: Weighted products whose weights are fitted per region of regions.partition_for, not over the domain.
REGIONAL = ("weighted-regions",)
MEMBER_BASELINES: tuple[str, ...] = (*COMBINERS, *WEIGHTED_COMBINERS)
#: Classical post-processing fitted on the trailing window of analyses (DLENS_REFERENCE_WINDOW_DAYS).
LEARNED: tuple[str, ...] = ("mos", "emos")
BASELINES: tuple[str, ...] = (*MEMBER_BASELINES, *LEARNED, *REFERENCES)
SKILL_WEIGHTED: tuple[str, ...] = tuple(WEIGHTED_COMBINERS)
#: Baselines that learn from the target (trailing skill, fitted coefficients, the target's own past): each
#: is fitted on the target it is scored against, and stored per target (`stored_name`).
TARGET_FITTED: tuple[str, ...] = (*SKILL_WEIGHTED, *LEARNED, *REFERENCES)
WEIGHT_DIMS = ("run", "species", "lead_block", "member")
CELL_WEIGHT_DIMS = ("run", "species", "lead_block", "member", "level", "latitude", "longitude")
DESCRIPTIONS = {
    "median": "CAMS Median ENSEMBLE: per point, median of the members present (mean of the two middle "
    "values for an even count)",
    "mean": "per point, mean of the members present",
    "median-early": "the median of the first six members delivered (chimere, emep, euradim, lotos, mocage, "
    "silam): what the operational timeline offers before the other CTMs arrive",
    "weighted": "Weighted ENSEMBLE: inverse trailing-MSE member weights per species and lead block, "
    "renormalised over the members present (docs/evaluate.md)",
    "weighted-regions": "the Weighted ENSEMBLE with its inverse trailing-MSE weights fitted per region "
    "(PRUDENCE box × land/sea) instead of over the whole domain",
    "best-member": "per point, the present member with the best trailing skill (same weights as weighted)",
    "mos": "per gridpoint, lead block and hour of day, a linear correction of the median in log space fitted "
    "on the trailing window, shrunk towards no correction where samples are few (docs/evaluate.md)",
    "emos": "per region and lead block, a ridge combination of the gridpoint-debiased members in log space "
    "fitted on the trailing window, renormalised over the members present (docs/evaluate.md)",
} | REFERENCE_DESCRIPTIONS


@dataclass
class BaselineReport:
    """What `ensure_baselines` did."""

    computed: dict[str, int] = field(default_factory=dict)  # product -> runs committed
    failed: list[str] = field(default_factory=list)


def stored_name(name: str, target: str) -> str:
    """The product a baseline is stored as: `name`, or `<name>.<target>` for a baseline fitted on a reanalysis
    target (`TARGET_FITTED`), so that each target's fit has its own products/ group."""
    return f"{name}.{target}" if target != "analysis" and name in TARGET_FITTED else name


# ---------------------------------------------------------------------------- worker tasks
def member_skill_unit(url: str, run: str, region: np.ndarray, regions: int, target: str = "analysis") -> dict:
    """Squared-error sums (species, block, member) of every member of one run against the `target`, and
    per region (species, block, region, member); region: (cell,) index into the `regions` regions."""
    reader = StoreReader(url)
    t0 = np.datetime64(run, "h")
    sse = np.zeros((len(SPECIES_NAMES), len(LEAD_BLOCKS), len(MEMBERS)))
    n = np.zeros_like(sse)
    sse_region = np.zeros((len(SPECIES_NAMES), len(LEAD_BLOCKS), regions, len(MEMBERS)))
    n_region = np.zeros_like(sse_region)
    blocks = list(LEAD_BLOCKS)
    for k, species in enumerate(SPECIES_NAMES):
        if not reader.member_presence(species, t0).any():
            continue
        for lead in reader.spec.leads:
            truth = reader.analysis(species, t0 + np.timedelta64(lead, "h"), target=target)
            if truth is None:
                continue
            err = (reader.members(species, t0, lead) - truth[None]).reshape(len(MEMBERS), -1)
            ok = np.isfinite(err)
            squared = np.where(ok, err * err, 0.0)
            b = blocks.index(lead_block(lead))
            sse[k, b] += squared.sum(axis=1)
            n[k, b] += ok.sum(axis=1)
            for m in range(len(MEMBERS)):
                sse_region[k, b, :, m] += np.bincount(region, weights=squared[m], minlength=regions)
                n_region[k, b, :, m] += np.bincount(region, weights=ok[m], minlength=regions)
    return {"run": run, "sse": sse, "n": n, "sse_region": sse_region, "n_region": n_region}


def product_unit(
    url: str,
    run: str,
    names: Sequence[str],
    positions: dict[str, int],
    weights: dict[str, tuple[np.ndarray, np.ndarray]],
    region: np.ndarray,
    fitted: dict[str, dict[str, MosCoefficients | EmosCoefficients]],
    reference_days: int,
    target: str = "analysis",
) -> dict:
    """Write the products `names` of one run for every species (as `stored_name(name, target)`); return the
    status per (name, species).

    weights: species -> weights over the domain (block, member) and per region (block, region, member)
    for the skill-weighted products; region: (cell,) region index of each cell; fitted: learned baseline
    -> species -> its coefficients for this run; reference_days: the climatology's trailing window;
    target: what the references read (the analysis, or a reanalysis).
    """
    reader = StoreReader(url)
    writer = FieldWriter(url)
    t0 = np.datetime64(run, "h")
    blocks = list(LEAD_BLOCKS)
    status: dict[tuple[str, str], int] = {}
    combined = [name for name in names if name not in REFERENCES]
    subsets = {name: np.isin(MEMBERS, SUBSETS.get(name, MEMBERS)) for name in combined}
    for species in SPECIES_NAMES:
        presence = reader.member_presence(species, t0)
        present = {name: bool(presence[subsets[name]].any()) for name in combined}
        for li, lead in enumerate(reader.spec.leads):
            if not any(present.values()):
                break
            members = reader.members(species, t0, lead)
            block = blocks.index(lead_block(lead))
            for name in (n for n in combined if present[n]):
                if name in LEARNED:
                    field = fitted[name][species].forecast(members, li, block)
                elif name in SKILL_WEIGHTED:
                    w = (
                        weights[species][1][block][region].T.reshape(members.shape)
                        if name in REGIONAL
                        else weights[species][0][block]
                    )
                    field = WEIGHTED_COMBINERS[name](members, w)
                else:
                    field = COMBINERS[name](members[subsets[name]])
                writer.write(f"products/{stored_name(name, target)}", species, (positions[name], li), field)
        for name in combined:
            status[(name, species)] = int(Status.COMPLETE if present[name] else Status.ABSENT)
        for name in (n for n in names if n in REFERENCES):
            fields = hourly_fields(reader, name, species, t0, reference_days, target)
            for li, lead in enumerate(reader.spec.leads if fields is not None else ()):
                writer.write(
                    f"products/{stored_name(name, target)}", species, (positions[name], li), fields[lead % 24]
                )
            status[(name, species)] = int(Status.COMPLETE if fields is not None else Status.ABSENT)
    return {"run": run, "status": status}


def missing_runs(
    reader: StoreReader, name: str, runs: Sequence[np.datetime64], target: str = "analysis"
) -> list[np.datetime64]:
    """Runs where baseline `name` (fitted on `target`) is still PENDING for some species: one with members
    for a member baseline, any for a reference (it needs no member)."""
    return [
        run
        for run in runs
        if any(
            reader.product_status(stored_name(name, target), sp, run) == Status.PENDING
            and (name in REFERENCES or reader.member_presence(sp, run).any())
            for sp in SPECIES_NAMES
        )
    ]


# ---------------------------------------------------------------------------- coordinator
def ensure_baselines(
    url: str,
    runs: Sequence[np.datetime64],
    names: Sequence[str],
    window_days: int,
    reference_days: int | None = None,
    target: str = "analysis",
) -> BaselineReport:
    """Compute and write the baselines `names` for `runs` where the store lacks them; `window_days`: the
    weighted ENSEMBLE's trailing window, `reference_days` the climatology's (default: the settings');
    `target`: what the `TARGET_FITTED` baselines learn from, stored as `stored_name(name, target)`."""
    reference_days = reference_days or get_settings().reference_window_days
    report = BaselineReport()
    reader = StoreReader(url)
    todo = {name: missing_runs(reader, name, runs, target) for name in names}
    todo = {name: r for name, r in todo.items() if r}
    if not todo:
        return report
    coordinator = StoreCoordinator(url)
    all_runs = sorted({r for rs in todo.values() for r in rs})
    weights = {}
    if any(name in SKILL_WEIGHTED for name in todo):
        weights = _trailing_weights(url, reader, all_runs, window_days, report, target)
    learned = [name for name in todo if name in LEARNED]
    fitted = _fit_learned(url, reader, todo, learned, reference_days, report, target) if learned else {}
    region, _ = _cell_regions(reader)
    positions = {}
    for name in todo:
        path = coordinator.ensure_product(stored_name(name, target))
        coordinator.update_attrs(path, description=DESCRIPTIONS[name], units="µg/m3")
        if name in TARGET_FITTED:
            coordinator.update_attrs(path, target=target)
        positions[name] = dict(zip(all_runs, coordinator.ensure_axis(path, [_dt(r) for r in all_runs])))
        if name in SKILL_WEIGHTED:
            _store_weights(coordinator, path, name, weights, positions[name], window_days, reader)
        if name == "climatology":
            coordinator.update_attrs(path, reference_window_days=reference_days)
        if name in LEARNED:
            _store_coefficients(coordinator, path, name, fitted[name], positions[name])
            coordinator.update_attrs(path, reference_window_days=reference_days)

    committed: dict[str, set[np.datetime64]] = {}

    def commit(result: dict) -> None:
        run = np.datetime64(result["run"], "h")
        for (name, species), code in result["status"].items():
            path = f"products/{stored_name(name, target)}"
            coordinator.mark(path, positions[name][run], code, (SPECIES_NAMES.index(species),))
            committed.setdefault(name, set()).add(run)

    units = []
    for run in all_runs:
        names_for_run = [name for name, rs in todo.items() if run in rs]
        run_weights = {sp: (w[0], w[2]) for sp, w in weights[run].items()} if run in weights else {}
        units.append(
            Unit(
                f"products {_day(run)}",
                product_unit,
                (
                    url,
                    str(run),
                    names_for_run,
                    {n: positions[n][run] for n in names_for_run},
                    run_weights,
                    region,
                    {n: fitted[n][run] for n in names_for_run if n in LEARNED},
                    reference_days,
                    target,
                ),
            )
        )
    fan = fan_out(units, commit, desc="baselines")
    report.failed += fan.failed
    report.computed = {name: len(rs) for name, rs in committed.items()}
    return report


def _trailing_weights(
    url: str,
    reader: StoreReader,
    runs: list[np.datetime64],
    window_days: int,
    report: BaselineReport,
    target: str,
) -> dict[np.datetime64, dict[str, tuple[np.ndarray, ...]]]:
    """run -> species -> (weights (block, member), trailing RMSE (block, member), weights per region (block,
    region, member)), the members' skill measured against `target`."""
    history = _past_runs(reader, runs, window_days)
    region, names = _cell_regions(reader)
    args = (region, len(names), target)
    results: list[dict] = []
    fan = fan_out(
        [Unit(f"skill {_day(r)}", member_skill_unit, (url, str(r), *args)) for r in history],
        results.append,
        desc="member skill",
    )
    report.failed += fan.failed
    results.sort(key=lambda r: r["run"])
    days = np.array([np.datetime64(r["run"], "D") for r in results], dtype="datetime64[D]")
    shape = (0, len(LEAD_BLOCKS), len(MEMBERS))
    regional_shape = (0, len(LEAD_BLOCKS), len(names), len(MEMBERS))
    out: dict[np.datetime64, dict[str, tuple[np.ndarray, ...]]] = {}
    for k, species in enumerate(SPECIES_NAMES):
        skill = MemberSkill(
            days,
            np.array([r["sse"][k] for r in results]).reshape(-1, *shape[1:]),
            np.array([r["n"][k] for r in results]).reshape(-1, *shape[1:]),
        )
        regional = MemberSkill(
            days,
            np.array([r["sse_region"][k] for r in results]).reshape(-1, *regional_shape[1:]),
            np.array([r["n_region"][k] for r in results]).reshape(-1, *regional_shape[1:]),
        )
        for run in runs:
            per_block = [inverse_mse_weights(*skill.window(run, b, window_days)) for b in LEAD_BLOCKS]
            per_region = np.array(
                [
                    [inverse_mse_weights(sse, n)[0] for sse, n in zip(*regional.window(run, b, window_days))]
                    for b in LEAD_BLOCKS
                ]
            )  # (block, region, member)
            out.setdefault(run, {})[species] = (
                np.array([w for w, _ in per_block]),
                np.array([rmse for _, rmse in per_block]),
                per_region,
            )
    return out


def _cell_regions(reader: StoreReader) -> tuple[np.ndarray, tuple[str, ...]]:
    """The region index of every cell (level, lat, lon flattened) and the region names (partition_for)."""
    partition = partition_for(reader.spec.domain)
    return np.tile(partition.index.ravel(), len(reader.spec.levels)), partition.names


def _past_runs(reader: StoreReader, targets: Sequence[np.datetime64], days: int) -> list[np.datetime64]:
    """The complete runs any trailing window of `days` of the sorted `targets` may need, for every block."""
    earliest = targets[0] - np.timedelta64(24 * (days + max(map(block_lag_days, LEAD_BLOCKS))), "h")
    return [r for r in reader.complete_runs() if earliest <= r < targets[-1]]


def _fit_learned(
    url: str,
    reader: StoreReader,
    todo: dict[str, list[np.datetime64]],
    names: list[str],
    days: int,
    report: BaselineReport,
    target: str,
) -> dict[str, dict[np.datetime64, dict[str, MosCoefficients | EmosCoefficients]]]:
    """name -> run -> species -> coefficients of the learned baselines, fitted on the `target` of the
    trailing windows' runs."""
    past = _past_runs(reader, sorted({run for name in names for run in todo[name]}), days)
    region, regions = _cell_regions(reader)
    histories: list[RunHistory] = []
    fan = fan_out(
        [
            Unit(f"history {_day(r)}", run_history_unit, (url, str(r), region, len(regions), target))
            for r in past
        ],
        histories.append,
        desc="baseline history",
    )
    report.failed += fan.failed
    fits = {
        "mos": lambda run, sp: fit_mos(histories, run, sp, reader.spec.leads, region.size, days),
        "emos": lambda run, sp: fit_emos(histories, run, sp, region, len(regions), days),
    }
    return {
        name: {run: {sp: fits[name](run, sp) for sp in SPECIES_NAMES} for run in todo[name]} for name in names
    }


#: What the learned baselines keep per run in their group: array -> (dims between species and level,
#: long name).
COEFFICIENT_ARRAYS = {
    "coefficients": (
        ("lead", "coefficient"),
        "log(1 + mos) = intercept + slope log(1 + median); samples behind the fit",
    ),
    "member_bias": (
        CELL_WEIGHT_DIMS[2:4],
        "log-space shift added to each member (its trailing gridpoint bias, shrunk)",
    ),
    "member_weights": (
        CELL_WEIGHT_DIMS[2:4],
        "weight of each de-biased member in the cell's region, before renormalisation",
    ),
}


def _store_coefficients(
    coordinator: StoreCoordinator, path: str, name: str, fitted: dict, positions: dict
) -> None:
    """Write a learned baseline's coefficients per run into its group (docs/evaluate.md); fitted: run ->
    species -> coefficients."""
    for run, pos in positions.items():
        per_species = [fitted[run][sp].store_arrays() for sp in SPECIES_NAMES]
        for key in per_species[0]:
            dims, long_name = COEFFICIENT_ARRAYS[key]
            arr = coordinator.ensure_field_array(
                path,
                key,
                ("run", "species", *dims, "level", "latitude", "longitude"),
                {"long_name": long_name},
            )
            arr[pos] = np.stack([arrays[key] for arrays in per_species]).reshape(arr.shape[1:])
    if name == "emos":
        coordinator.update_attrs(path, regions=list(partition_for(coordinator.spec.domain).names))


def _store_weights(
    coordinator: StoreCoordinator,
    path: str,
    name: str,
    weights: dict,
    positions: dict,
    window: int,
    reader: StoreReader,
) -> None:
    """Write the weights and the trailing RMSE behind them (run, species, lead_block, member); for a
    regional product, the weights of each cell's region (run, species, lead_block, member, level, lat,
    lon)."""
    if name in REGIONAL:
        arr = coordinator.ensure_field_array(
            path, "member_weights", CELL_WEIGHT_DIMS,
            {"long_name": "member weights of the cell's region before renormalisation over present members"},
        )  # fmt: skip
        region, names = _cell_regions(reader)
        for run, pos in positions.items():
            per_cell = [weights[run][sp][2][:, region, :].transpose(0, 2, 1) for sp in SPECIES_NAMES]
            arr[pos] = np.stack(per_cell).reshape(arr.shape[1:])
        coordinator.update_attrs(
            path, weight_window_days=window, regions=list(names),
            weight_method="inverse trailing MSE per species, lead block and region",
            updated=datetime.now(UTC).isoformat(timespec="seconds"),
        )  # fmt: skip
        return
    w_arr = coordinator.ensure_axis_array(
        path,
        "weights",
        WEIGHT_DIMS,
        {"long_name": "member weights before renormalisation over present members"},
    )
    r_arr = coordinator.ensure_axis_array(
        path,
        "trailing_rmse",
        WEIGHT_DIMS,
        {"long_name": "member RMSE over the trailing window", "units": "µg/m3"},
    )
    for run, pos in positions.items():
        w_arr[pos] = np.stack([weights[run][sp][0] for sp in SPECIES_NAMES])
        r_arr[pos] = np.stack([weights[run][sp][1] for sp in SPECIES_NAMES])
    coordinator.update_attrs(
        path, weight_window_days=window, weight_method="inverse trailing MSE per species and lead block",
        updated=datetime.now(UTC).isoformat(timespec="seconds"),
    )  # fmt: skip


def _dt(run: np.datetime64) -> datetime:
    return run.astype("datetime64[s]").astype(datetime)


def _day(run: np.datetime64) -> str:
    return str(np.datetime64(run, "D"))
