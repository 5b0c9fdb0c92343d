"""`dlens-ingest synthetic`: fill the store from the synthetic generator, one Ray task per unit.

Units: (run, species) for the members, (species, day) for the hourly analysis covering every
valid time of the runs, (run,) for the meteo predictors. Cells already committed are skipped, so
re-running the same command changes nothing and a crashed run is finished by the next one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dlens.common.grid import Domain
from dlens.common.layout import ANALYSIS, FORECASTS, METEO, METEO_VARIABLES, Status
from dlens.common.parallel import FanOutReport, Unit, fan_out
from dlens.common.species import SPECIES_NAMES
from dlens.common.writer import FieldWriter, StoreCoordinator, StoreSpec, field_stats, merge_stats
from dlens.ingest.synthetic import SyntheticGenerator

FLOOR_KEYS = ("n", "analysis_sq", "common_sq", "median_sq")


@dataclass(frozen=True)
class SyntheticRequest:
    """What to generate."""

    store: str
    spec: StoreSpec
    start: datetime
    days: int
    species: tuple[str, ...]
    seed: int

    @property
    def runs(self) -> list[datetime]:
        return [self.start + timedelta(days=d) for d in range(self.days)]

    @property
    def analysis_times(self) -> list[datetime]:
        """Every hour from the first run to the last valid time of the last run."""
        hours = (self.days - 1) * 24 + max(self.spec.leads)
        return [self.start + timedelta(hours=h) for h in range(hours + 1)]


# ---------------------------------------------------------------------------- worker tasks
def forecast_unit(
    store: str, domain: Domain, seed: int, run: datetime, position: int, species: str, leads: tuple[int, ...]
) -> dict:
    """Write all members of one run and species, lead by lead; return stats and floor sums."""
    gen = SyntheticGenerator(domain, seed)
    writer = FieldWriter(store)
    stats = field_stats(np.empty(0))
    floor = dict.fromkeys(FLOOR_KEYS, 0.0)
    for li, lead in enumerate(leads):
        fields = gen.members(species, run, lead)
        writer.write(FORECASTS, species, (position, li, slice(None), 0), fields)
        stats = merge_stats(stats, field_stats(fields))
        for key, value in gen.error_floor(species, run, lead).items():
            floor[key] += value
    return {
        "kind": "forecast", "position": position, "species": species, "run": run.isoformat(),
        "missing": gen.missing_members(run), "stats": stats, "floor": floor,
    }  # fmt: skip


def analysis_unit(
    store: str, domain: Domain, seed: int, species: str, times: list[datetime], positions: list[int]
) -> dict:
    """Write the hourly analysis of one species for a block of valid times."""
    gen = SyntheticGenerator(domain, seed)
    writer = FieldWriter(store)
    stats = []
    for t, pos in zip(times, positions):
        field = gen.analysis(species, t)
        writer.write(ANALYSIS, species, (pos, 0), field)
        stats.append(field_stats(field))
    return {"kind": "analysis", "species": species, "positions": positions, "stats": stats}


def meteo_unit(
    store: str, domain: Domain, seed: int, run: datetime, position: int, leads: tuple[int, ...]
) -> dict:
    """Write the IFS-like weather forecast of one run."""
    gen = SyntheticGenerator(domain, seed)
    writer = FieldWriter(store)
    for var in METEO_VARIABLES:
        for li, lead in enumerate(leads):
            writer.write(METEO, var, (position, li), gen.meteo(var, run, lead))
    return {"kind": "meteo", "position": position}


# ---------------------------------------------------------------------------- coordinator
def ingest_synthetic(req: SyntheticRequest) -> FanOutReport:
    """Plan, fan out and commit a synthetic ingest."""
    coord = StoreCoordinator(req.store, req.spec)
    gen = SyntheticGenerator(req.spec.domain, req.seed)
    _check_provenance(coord, gen.params)
    coord.write_static(gen.static_fields())

    run_pos = coord.ensure_axis(FORECASTS, req.runs)
    meteo_pos = coord.ensure_axis(METEO, req.runs)
    times = req.analysis_times
    time_pos = coord.ensure_axis(ANALYSIS, times)

    f_status, a_status, m_status = coord.status(FORECASTS), coord.status(ANALYSIS), coord.status(METEO)
    domain, seed, leads = req.spec.domain, req.seed, req.spec.leads
    units: list[Unit] = []
    for run, pos in zip(req.runs, run_pos):
        for sp in req.species:
            if np.any(f_status[pos, :, SPECIES_NAMES.index(sp)] == Status.PENDING):
                args = (req.store, domain, seed, run, pos, sp, leads)
                units.append(Unit(f"members {sp} run {run:%Y-%m-%d}", forecast_unit, args))
    for sp in req.species:
        k = SPECIES_NAMES.index(sp)
        todo = [(t, p) for t, p in zip(times, time_pos) if a_status[p, k] == Status.PENDING]
        for block in _by_day(todo):
            args = (req.store, domain, seed, sp, [t for t, _ in block], [p for _, p in block])
            units.append(Unit(f"analysis {sp} {block[0][0]:%Y-%m-%d}", analysis_unit, args))
    for run, pos in zip(req.runs, meteo_pos):
        if np.any(m_status[pos] == Status.PENDING):
            args = (req.store, domain, seed, run, pos, leads)
            units.append(Unit(f"meteo run {run:%Y-%m-%d}", meteo_unit, args))

    floors: dict = dict(coord.root.attrs.get("synthetic", {}).get("floor_sums", {}))

    def commit(result: dict) -> None:
        if result["kind"] == "forecast":
            k = SPECIES_NAMES.index(result["species"])
            status = np.where(result["missing"], Status.ABSENT, Status.COMPLETE).astype("uint8")
            floors.setdefault(result["run"][:10], {})[result["species"]] = result["floor"]
            _write_floor(coord, gen.params, floors)  # before the commit: a crash never loses a floor
            coord.write_stats(FORECASTS, result["position"], result["species"], result["stats"])
            coord.mark(FORECASTS, result["position"], status, (slice(None), k))
        elif result["kind"] == "analysis":
            k = SPECIES_NAMES.index(result["species"])
            coord.write_stats(ANALYSIS, result["positions"], result["species"], result["stats"])
            coord.mark(ANALYSIS, result["positions"], Status.COMPLETE, (k,))
        else:
            coord.mark(METEO, result["position"], Status.COMPLETE)

    report = fan_out(units, commit, desc="synthetic ingest")
    coord.refresh_normalisation()
    _write_floor(coord, gen.params, floors)
    coord.update_attrs(
        "", provenance={"source": "synthetic", "generator": "dlens.ingest.synthetic", "params": gen.params}
    )
    return report


def _write_floor(coord: StoreCoordinator, params: dict, floors: dict) -> None:
    """Root attrs `synthetic`: generator parameters, per-run floor sums (sorted) and their summary."""
    ordered = {run: dict(sorted(per_species.items())) for run, per_species in sorted(floors.items())}
    coord.update_attrs(
        "", synthetic={"params": params, "floor_sums": ordered, "floor": summarise_floor(ordered)}
    )


def _by_day(items: list[tuple[datetime, int]]) -> list[list[tuple[datetime, int]]]:
    blocks: dict = {}
    for t, p in items:
        blocks.setdefault(t.date(), []).append((t, p))
    return list(blocks.values())


def _check_provenance(coord: StoreCoordinator, params: dict) -> None:
    """A store holds one generator configuration: mixing seeds would make a meaningless data set."""
    previous = coord.root.attrs.get("synthetic", {}).get("params")
    if previous is not None and previous != params:
        raise ValueError(
            f"store {coord.url!r} was filled by the synthetic generator with other parameters "
            f"(seed {previous.get('seed')}); use a new store or the same --seed"
        )


def summarise_floor(floor_sums: dict) -> dict[str, dict[str, float]]:
    """Per-species RMSEs of the analysis error, the common member error and the median's error."""
    totals: dict[str, dict[str, float]] = {}
    for per_species in floor_sums.values():
        for sp, sums in per_species.items():
            acc = totals.setdefault(sp, dict.fromkeys(FLOOR_KEYS, 0.0))
            for key in FLOOR_KEYS:
                acc[key] += sums[key]
    return {
        sp: {
            "analysis_rmse": float(np.sqrt(acc["analysis_sq"] / acc["n"])),
            "common_error_rmse": float(np.sqrt(acc["common_sq"] / acc["n"])),
            "median_rmse": float(np.sqrt(acc["median_sq"] / acc["n"])),
        }
        for sp, acc in totals.items()
        if acc["n"] > 0
    }
