"""`dlens-ingest files`: CAMS files as the ADS delivers them, into the store.

1. Each path is inspected and fully validated in its own Ray task (bad files are reported, one
   line each, and never touch the store).
2. The coordinator checks the good files against the store (grid, leads, levels, duplicates),
   grows the axes and plans one unit per (run, species) for member forecasts (all members of a
   run share a chunk, so one unit owns it), one per (run, species) for the CAMS ensemble product,
   and one per (file, species) for the analysis, or for the interim or validated reanalysis, each to its
   own group (`layout.TARGETS`).
3. The cells the units will rewrite are first reset to PENDING (a re-ingest over COMPLETE cells), then
   units write lead by lead (a few fields in memory) and the coordinator commits each on return.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

from dlens.common.grid import Domain, domain_of
from dlens.common.layout import CAMS_ENSEMBLE_PRODUCT, FORECASTS, TARGETS, Status
from dlens.common.parallel import Unit, fan_out
from dlens.common.species import ENSEMBLE_MEMBER, MEMBERS, SPECIES_NAMES
from dlens.common.writer import (
    FieldWriter,
    StoreCoordinator,
    StoreSpec,
    contiguous_blocks,
    field_stats,
    fields_per_write,
    merge_stats,
)
from dlens.ingest.readers import CamsFile, IngestError, check_on_grid, inspect_files, open_normalised


@dataclass
class FilesReport:
    """Outcome of a files ingest: units written and one line per rejected file or failed unit."""

    units: int = 0
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- worker tasks
def inspect_unit(path: str, workdir: str) -> tuple[list[CamsFile], list[str]]:
    """Inspect and validate one user path (a file or a zip)."""
    files, errors = inspect_files([Path(path)], Path(workdir))
    good = []
    for cf in files:
        try:
            check_on_grid(cf)
            good.append(cf)
        except IngestError as exc:
            errors.append(exc)
    return good, [str(e) for e in errors]


def _window(cf: CamsFile, domain: Domain) -> tuple[slice, slice]:
    fdom = domain_of(cf.latitude, cf.longitude)
    i, j = domain.i0 - fdom.i0, domain.j0 - fdom.j0
    return slice(i, i + domain.shape[0]), slice(j, j + domain.shape[1])


def forecast_unit(store: str, spec: StoreSpec, path: str, position: int, species: str, members: dict) -> dict:
    """Write the members (index -> CamsFile) of one run and species into their shared chunks."""
    writer = FieldWriter(store)
    datasets = {m: (open_normalised(cf), _window(cf, spec.domain)) for m, cf in members.items()}
    stats = field_stats(np.empty(0))
    target = writer.array(path, species)
    for li, lead in enumerate(spec.leads):
        for vi, level in enumerate(spec.levels):
            if path == FORECASTS:
                index: tuple = (position, li, slice(None), vi)
                block = target[index]  # keep members committed by earlier calls
                for m, (ds, (rows, cols)) in datasets.items():
                    block[m] = ds[species].sel(lead=lead, level=level).values[rows, cols]
            else:
                index = (position, li, vi)
                ((ds, (rows, cols)),) = datasets.values()
                block = ds[species].sel(lead=lead, level=level).values[rows, cols]
            writer.write(path, species, index, block)
            stats = merge_stats(stats, field_stats(block))
    return {"kind": path, "position": position, "species": species, "members": list(members), "stats": stats}


def analysis_unit(store: str, spec: StoreSpec, cf: CamsFile, species: str, positions: list[int]) -> dict:
    """Write one species of an analysis/reanalysis file into its target's group, in blocks of consecutive
    hours."""
    group = TARGETS[cf.target]
    writer = FieldWriter(store)
    variable = open_normalised(cf)[species].sel(level=list(spec.levels))
    rows, cols = _window(cf, spec.domain)
    per_write = fields_per_write(4 * len(spec.levels) * spec.domain.shape[0] * spec.domain.shape[1])
    stats = []
    for first, length in contiguous_blocks(positions, per_write):
        block = variable.isel(time=slice(first, first + length)).values[..., rows, cols]
        p0 = positions[first]
        writer.write(group, species, slice(p0, p0 + length), block)
        stats += [field_stats(frame) for frame in block]
    return {"kind": group, "species": species, "positions": positions, "stats": stats}


# ---------------------------------------------------------------------------- coordinator
def ingest_files(
    store: str, paths: Sequence[Path], domain: Domain | None = None, leads: Sequence[int] | None = None,
    levels: Sequence[int] | None = None,
) -> FilesReport:  # fmt: skip
    """Validate `paths`, write the good files into the store, report the bad ones."""
    report = FilesReport()
    with tempfile.TemporaryDirectory(prefix="dlens-ingest-") as workdir:
        good: list[CamsFile] = []

        def collect(result: tuple[list[CamsFile], list[str]]) -> None:
            good.extend(result[0])
            report.errors.extend(result[1])

        units = [
            Unit(Path(p).name, inspect_unit, (str(p), str(Path(workdir) / f"{k:05d}")))
            for k, p in enumerate(paths)
        ]
        inspected = fan_out(units, collect, desc="inspect files")
        report.errors += inspected.failed
        if not good:
            return report
        coord = _open_or_create(store, good, domain, leads, levels)
        accepted = _accept(coord.spec, good, report.errors)
        _write(coord, accepted, report)
    return report


def _open_or_create(store, good, domain, leads, levels) -> StoreCoordinator:
    try:
        return StoreCoordinator(store)
    except FileNotFoundError:
        first = good[0]
        spec = StoreSpec(
            domain or domain_of(first.latitude, first.longitude),
            tuple(leads or next((cf.leads for cf in good if cf.leads), (0,))),
            tuple(levels or first.levels),
        )
        return StoreCoordinator(store, spec)


def _accept(spec: StoreSpec, files: list[CamsFile], errors: list[str]) -> list[CamsFile]:
    """Files that fit the store; one error line for each that does not, or that repeats another."""
    accepted, claimed = [], set()
    for cf in sorted(files, key=lambda f: f.source):
        try:
            fdom = domain_of(cf.latitude, cf.longitude)
            d = spec.domain
            if not (fdom.i0 <= d.i0 and d.i1 <= fdom.i1 and fdom.j0 <= d.j0 and d.j1 <= fdom.j1):
                raise ValueError(f"covers {fdom.spec()}, the store's domain is {d.spec()}")
            if missing := sorted(set(spec.levels) - set(cf.levels)):
                raise ValueError(f"lacks levels {missing} m that the store keeps")
            if cf.kind == "forecast" and (missing := sorted(set(spec.leads) - set(cf.leads))):
                raise ValueError(
                    f"lacks leads {missing[:6]}{'…' if len(missing) > 6 else ''} h that the store keeps"
                )
            if cf.kind != "forecast" and cf.member not in (None, ENSEMBLE_MEMBER):
                raise ValueError(f"is an analysis of {cf.member}: only the ENSEMBLE analysis is the target")
            keys = (
                {(cf.run, cf.member, sp) for sp in cf.species}
                if cf.kind == "forecast"
                else {(cf.target, t, sp) for t in cf.times for sp in cf.species}
            )
            if clash := keys & claimed:
                raise ValueError(
                    f"duplicates data of another file in this call ({sorted(map(str, clash))[0]})"
                )
            claimed |= keys
            accepted.append(cf)
        except ValueError as exc:
            errors.append(f"{cf.source}: {exc}")
    return accepted


def _write(coord: StoreCoordinator, files: list[CamsFile], report: FilesReport) -> None:
    spec, store = coord.spec, coord.url
    forecasts = [cf for cf in files if cf.kind == "forecast" and cf.member != ENSEMBLE_MEMBER]
    ensemble = [cf for cf in files if cf.kind == "forecast" and cf.member == ENSEMBLE_MEMBER]
    analyses = [cf for cf in files if cf.kind != "forecast"]
    units: list[Unit] = []
    cells: dict[str, list[tuple[int, ...]]] = defaultdict(list)  # the status cells the units rewrite
    by_run: dict[tuple[datetime, str], dict[int, CamsFile]] = defaultdict(dict)
    for cf in forecasts:
        for sp in cf.species:
            by_run[(cf.run, sp)][MEMBERS.index(cf.member)] = cf
    if by_run:
        pos = dict(zip(by_run, coord.ensure_axis(FORECASTS, [r for r, _ in by_run])))
        units += [
            Unit(
                f"members {sp} run {run:%Y-%m-%d}",
                forecast_unit,
                (store, spec, FORECASTS, pos[(run, sp)], sp, m),
            )
            for (run, sp), m in by_run.items()
        ]
        cells[FORECASTS] += [
            (pos[(run, sp)], i, SPECIES_NAMES.index(sp)) for (run, sp), m in by_run.items() for i in m
        ]
    if ensemble:
        positions = coord.ensure_axis(CAMS_ENSEMBLE_PRODUCT, [cf.run for cf in ensemble])
        units += [
            Unit(cf.source, forecast_unit, (store, spec, CAMS_ENSEMBLE_PRODUCT, p, sp, {0: cf}))
            for cf, p in zip(ensemble, positions)
            for sp in cf.species
        ]
        cells[CAMS_ENSEMBLE_PRODUCT] += [
            (p, SPECIES_NAMES.index(sp)) for cf, p in zip(ensemble, positions) for sp in cf.species
        ]
    for cf in analyses:
        group = TARGETS[cf.target]
        positions = coord.ensure_axis(group, list(cf.times))
        units += [Unit(cf.source, analysis_unit, (store, spec, cf, sp, positions)) for sp in cf.species]
        cells[group] += [(p, SPECIES_NAMES.index(sp)) for p in positions for sp in cf.species]
    _reset(coord, cells)

    def commit(result: dict) -> None:
        k = SPECIES_NAMES.index(result["species"])
        if result["kind"] in TARGETS.values():
            coord.write_stats(result["kind"], result["positions"], result["species"], result["stats"])
            coord.mark(result["kind"], result["positions"], Status.COMPLETE, (k,))
            return
        if result["kind"] == FORECASTS:
            for m in result["members"]:
                coord.mark(FORECASTS, result["position"], Status.COMPLETE, (m, k))
        else:
            coord.mark(CAMS_ENSEMBLE_PRODUCT, result["position"], Status.COMPLETE, (k,))
        coord.write_stats(result["kind"], result["position"], result["species"], result["stats"])

    done = fan_out(units, commit, desc="ingest files")
    report.units += done.done
    report.errors += done.failed
    coord.refresh_normalisation()
    sources = dict(coord.root.attrs.get("provenance", {}).get("files", {}))
    sources.update({cf.sha256: cf.source for cf in files})
    coord.update_attrs("", provenance={"source": "files", "files": sources})


def _reset(coord: StoreCoordinator, cells: dict[str, list[tuple[int, ...]]]) -> None:
    """Mark `cells` (per group, status indices) PENDING, one status write per group, before any unit writes
    over them: a unit that fails part-way leaves its cells PENDING, never COMPLETE over old and new data."""
    for path, index in cells.items():
        status = coord.status(path)
        rewrite = tuple(np.array(axis) for axis in zip(*index))
        if (status[rewrite] != Status.PENDING).any():
            status[rewrite] = Status.PENDING
            rows = np.unique(rewrite[0])
            coord.mark(path, rows.tolist(), status[rows])
