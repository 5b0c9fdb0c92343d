"""`dlens-ingest synthetic`: fill the store from the synthetic generator, one Ray task per unit.

Units: one per run (the members of every species at every lead, and the meteo predictors the members
ran on), and one per day of valid times (the analysis and the two reanalyses of every species at every
hour, and the station observations). A unit computes the weather and the chemistry's hourly factors once
for all species. Cells already committed are skipped, so re-running the same command changes nothing and
a crashed run is finished by the next one.

Levels: every level of the store's spec is written for the members and the three analyses (the generator's
profile above ground, `dlens.ingest.synthetic.levels`; level 0 is the surface field, unchanged); the
observations and the meteo are surface fields, and the error floor is summed at the surface only. The
statistics (normalisation) of a run or an hour cover all its levels, as in `files`. Each level above ground
adds, on the full grid (420 × 700), 1.71 GB of float32 per run (0.84–1.18 GB stored) and 1.5–1.8 s of
generation (CPU, one process; 10.2 s at the surface), and 339 MB per analysis day (208–240 MB stored) and
1.4–1.7 s (4.1 s at the surface); docs/synthetic.md has the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from dlens.common.grid import Domain
from dlens.common.layout import (
    FORECASTS,
    METEO,
    METEO_VARIABLES,
    OBSERVATIONS,
    TARGETS,
    Status,
)
from dlens.common.parallel import FanOutReport, Unit, fan_out
from dlens.common.species import SPECIES_NAMES
from dlens.common.writer import FieldWriter, StoreCoordinator, StoreSpec, field_stats, merge_stats
from dlens.ingest.synthetic import SyntheticGenerator
from dlens.ingest.synthetic.levels import params as aloft_params

#: Each analysis of the generator and the group it goes to.
FORECAST_FLOOR = ("n", "weather_sq", "median_sq")
FLOOR_EVERY_H = 48  # the forecast floor is summed at the leads 0, 48 and 96 h (00 UTC: the truth's anchors)
ANALYSIS_FLOOR = ("n", *(f"{kind}_sq" for kind in TARGETS))


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
def run_unit(
    store: str, domain: Domain, seed: int, run: datetime, position: int, species: tuple[str, ...],
    leads: tuple[int, ...], meteo: bool, levels: tuple[int, ...] = (0,),
) -> dict:  # fmt: skip
    """Write the members of one run for `species` at every level, lead by lead, and (if `meteo`) its meteo
    predictors; return per species the statistics (over every level) and the floor sums (the surface's)."""
    gen = SyntheticGenerator(domain, seed)
    writer = FieldWriter(store)
    stats = {sp: field_stats(np.empty(0)) for sp in species}
    floor = {sp: dict.fromkeys(FORECAST_FLOOR, 0.0) for sp in species}
    for li, lead in enumerate(leads):
        for sp in species:
            for vi, level in enumerate(levels):
                fields = gen.members(sp, run, lead, level)
                writer.write(FORECASTS, sp, (position, li, slice(None), vi), fields)
                stats[sp] = merge_stats(stats[sp], field_stats(fields))
            if lead % FLOOR_EVERY_H == 0:
                for key, value in gen.error_floor(sp, run, lead).items():
                    floor[sp][key] += value
        if meteo:
            for var in METEO_VARIABLES:
                writer.write(METEO, var, (position, li), gen.meteo(var, run, lead))
    return {
        "kind": "run", "position": position, "run": run.isoformat(), "missing": gen.missing_members(run),
        "stats": stats, "floor": floor, "meteo": meteo,
    }  # fmt: skip


def day_unit(
    store: str, domain: Domain, seed: int, times: list[datetime], positions: dict[str, list[int | None]],
    species: tuple[str, ...], levels: tuple[int, ...] = (0,),
) -> dict:  # fmt: skip
    """Write one day's hours of the analyses at every level (the groups whose `positions` are not None for
    an hour) and the observations (surface) for `species`; return the statistics per group and species (one
    row per hour, over its levels), and the floor sums (the surface's)."""
    gen = SyntheticGenerator(domain, seed)
    writer = FieldWriter(store)
    stats: dict[str, dict[str, list]] = {path: {sp: [] for sp in species} for path in TARGETS.values()}
    floor = {sp: dict.fromkeys(ANALYSIS_FLOOR, 0.0) for sp in species}
    for k, t in enumerate(times):
        for sp in species:
            # the floor first: it computes the surface analyses the writes below then find in the cache
            for key, value in gen.analysis_floor(sp, t).items():
                floor[sp][key] += value
            written = {kind: path for kind, path in TARGETS.items() if positions[path][k] is not None}
            hour_stats = {path: field_stats(np.empty(0)) for path in written.values()}
            for vi, level in enumerate(levels):  # levels outside: the analyses of a level share its fields
                for kind, path in written.items():
                    field = gen.analysis(sp, t, kind, level)
                    writer.write(path, sp, (positions[path][k], vi), field)
                    hour_stats[path] = merge_stats(hour_stats[path], field_stats(field))
            for path, row in hour_stats.items():
                stats[path][sp].append(row)
            if positions[OBSERVATIONS][k] is not None:
                writer.write(
                    OBSERVATIONS, sp, (positions[OBSERVATIONS][k], slice(None)), gen.observations(sp, t)
                )
    return {
        "kind": "day",
        "day": times[0].date().isoformat(),
        "positions": positions,
        "stats": stats,
        "floor": floor,
    }


# ---------------------------------------------------------------------------- coordinator
def ingest_synthetic(req: SyntheticRequest) -> FanOutReport:
    """Plan, fan out and commit a synthetic ingest."""
    coord = StoreCoordinator(req.store, req.spec)
    gen = SyntheticGenerator(req.spec.domain, req.seed)
    _check_provenance(coord, gen.params)
    coord.write_static(gen.static_fields())
    coord.ensure_observations(*station_arrays(gen))

    run_pos = coord.ensure_axis(FORECASTS, req.runs)
    meteo_pos = coord.ensure_axis(METEO, req.runs)
    times = req.analysis_times
    time_pos = {path: coord.ensure_axis(path, times) for path in (*TARGETS.values(), OBSERVATIONS)}

    f_status, m_status = coord.status(FORECASTS), coord.status(METEO)
    t_status = {path: coord.status(path) for path in time_pos}
    domain, seed, leads = req.spec.domain, req.seed, req.spec.leads
    k_species = [SPECIES_NAMES.index(sp) for sp in req.species]
    units: list[Unit] = []
    for run, pos, m_pos in zip(req.runs, run_pos, meteo_pos):
        if m_pos != pos:
            raise RuntimeError(f"store {req.store!r}: forecasts and meteo disagree on run {run:%Y-%m-%d}")
        todo = tuple(
            sp for sp, k in zip(req.species, k_species) if np.any(f_status[pos, :, k] == Status.PENDING)
        )
        meteo = bool(np.any(m_status[pos] == Status.PENDING))
        if todo or meteo:
            args = (req.store, domain, seed, run, pos, todo, leads, meteo, req.spec.levels)
            units.append(Unit(f"run {run:%Y-%m-%d}", run_unit, args))
    for day in _days(times):
        hours = [k for k, t in enumerate(times) if t.date() == day]
        positions = {
            path: [time_pos[path][k] if np.any(t_status[path][time_pos[path][k], k_species] == Status.PENDING)
                   else None for k in hours]
            for path in time_pos
        }  # fmt: skip
        if any(p is not None for ps in positions.values() for p in ps):
            hour_times = [times[k] for k in hours]
            args = (req.store, domain, seed, hour_times, positions, req.species, req.spec.levels)
            units.append(Unit(f"analyses {day:%Y-%m-%d}", day_unit, args))

    floors: dict = dict(coord.root.attrs.get("synthetic", {}).get("floor_sums", {}))

    def commit(result: dict) -> None:
        if result["kind"] == "run":
            status = np.where(result["missing"], Status.ABSENT, Status.COMPLETE).astype("uint8")
            for sp, stats in result["stats"].items():
                floors.setdefault("runs", {}).setdefault(result["run"][:10], {})[sp] = result["floor"][sp]
                _write_floor(coord, gen.params, floors)  # before the commit: a crash never loses a floor
                coord.write_stats(FORECASTS, result["position"], sp, stats)
                coord.mark(FORECASTS, result["position"], status, (slice(None), SPECIES_NAMES.index(sp)))
            if result["meteo"]:
                coord.mark(METEO, result["position"], Status.COMPLETE)
            return
        floors.setdefault("days", {})[result["day"]] = result["floor"]
        _write_floor(coord, gen.params, floors)
        for path, positions in result["positions"].items():
            written = [p for p in positions if p is not None]
            if not written:
                continue
            for sp in req.species:
                k = SPECIES_NAMES.index(sp)
                if path in result["stats"]:
                    coord.write_stats(path, written, sp, result["stats"][path][sp])
                coord.mark(path, written, Status.COMPLETE, (k,))

    report = fan_out(units, commit, desc="synthetic ingest")
    coord.refresh_normalisation()
    _write_floor(coord, gen.params, floors)
    provenance = {"source": "synthetic", "generator": "dlens.ingest.synthetic", "params": gen.params}
    if any(level != 0 for level in req.spec.levels):  # the profile that made the levels above ground
        provenance["aloft"] = aloft_params()
    coord.update_attrs("", provenance=provenance)
    return report


def station_arrays(gen: SyntheticGenerator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The generator's stations as the observations group's STATION_FIELDS and (station, species) flags."""
    st = gen.stations()
    fields = {
        "station_code": st["code"].to_numpy(), "station_type": st["type"].to_numpy(),
        "station_area": st["area"].to_numpy(), "station_latitude": st["latitude"].to_numpy(),
        "station_longitude": st["longitude"].to_numpy(), "station_altitude": st["altitude"].to_numpy(),
        "withheld": st["withheld"].to_numpy(),
    }  # fmt: skip
    measures = np.stack([st[f"measures_{sp}"].to_numpy() for sp in SPECIES_NAMES], axis=1)
    return fields, measures


def _write_floor(coord: StoreCoordinator, params: dict, floors: dict) -> None:
    """Root attrs `synthetic`: generator parameters, floor sums per run and per day, and their summary."""
    ordered = {
        part: {
            key: dict(sorted(per_species.items()))
            for key, per_species in sorted(floors.get(part, {}).items())
        }
        for part in ("runs", "days")
    }
    coord.update_attrs(
        "", synthetic={"params": params, "floor_sums": ordered, "floor": summarise_floor(ordered)}
    )


def _days(times: list[datetime]) -> list:
    return list(dict.fromkeys(t.date() for t in times))


def _check_provenance(coord: StoreCoordinator, params: dict) -> None:
    """A store holds one generator configuration: mixing seeds would make a meaningless data set."""
    previous = coord.root.attrs.get("synthetic", {}).get("params")
    if previous is not None and previous != params:
        raise ValueError(
            f"store {coord.url!r} was filled by the synthetic generator with other parameters "
            f"(seed {previous.get('seed')}, generator version {previous.get('version')}); "
            "use a new store or the same --seed"
        )


def summarise_floor(floor_sums: dict) -> dict[str, dict[str, float]]:
    """Per species, RMSE against the truth of: each analysis (`analysis_rmse`, `interim_rmse`,
    `validated_rmse`, over every hour) and, at the 00 UTC leads of `FLOOR_EVERY_H`, a perfect chemistry
    model on the forecast weather (`weather_error_rmse`: what the members share and no combination of
    them removes) and the median of the members (`median_rmse`)."""
    totals: dict[str, dict[str, float]] = {}
    for part, keys in (("runs", FORECAST_FLOOR), ("days", ANALYSIS_FLOOR)):
        for per_species in floor_sums.get(part, {}).values():
            for sp, sums in per_species.items():
                acc = totals.setdefault(sp, {})
                for key in keys:
                    name = f"{part}_n" if key == "n" else key
                    acc[name] = acc.get(name, 0.0) + sums[key]
    out = {}
    for sp, acc in totals.items():
        summary = {}
        if acc.get("days_n"):
            summary.update({f"{k}_rmse": float(np.sqrt(acc[f"{k}_sq"] / acc["days_n"])) for k in TARGETS})
        if acc.get("runs_n"):
            summary["weather_error_rmse"] = float(np.sqrt(acc["weather_sq"] / acc["runs_n"]))
            summary["median_rmse"] = float(np.sqrt(acc["median_sq"] / acc["runs_n"]))
        out[sp] = summary
    return out
