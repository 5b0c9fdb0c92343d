"""Reading committed fields from the store, one field at a time (evaluate, train and serve share it).

Only committed cells are trusted (DESIGN §3): a member whose ingest status is not COMPLETE reads
as NaN, an analysis time or a product run that is not COMPLETE reads as None. The gridded truth is the
`analysis` group unless a method is given another target (`layout.TARGETS`: analysis, interim, validated),
which reads its reanalysis group instead. Open a reader inside
the process that uses it (a Ray task, a DataLoader worker): store handles are not fork-safe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cached_property

import numpy as np
import zarr
from zarr.core.sync import sync

from dlens.common.layout import (
    FORECASTS,
    METEO,
    METEO_VARIABLES,
    OBSERVATIONS,
    STATUS,
    TARGETS,
    Status,
    axis_group,
    product_group,
)
from dlens.common.species import SPECIES_NAMES
from dlens.common.store import open_store
from dlens.common.writer import StoreSpec, committed_labels


class StoreReader:
    """Read-only access to the committed forecasts, analysis and products of one store."""

    def __init__(self, url: str):
        self.url = url
        self.root = open_store(url, mode="r")
        self.spec = StoreSpec.from_attrs(self.root.attrs.asdict())
        self._arrays: dict[str, zarr.Array] = {}
        self._axes: dict[str, dict[np.datetime64, int]] = {}
        self._status: dict[str, np.ndarray] = {}
        self._present: dict[str, bool] = {}

    def array(self, path: str, name: str) -> zarr.Array:
        key = f"{path}/{name}"
        if key not in self._arrays:
            self._arrays[key] = self.root[key]
        return self._arrays[key]

    def axis(self, path: str) -> dict[np.datetime64, int]:
        """Committed labels of a group's run/time axis (datetime64[h]) mapped to positions."""
        if path not in self._axes:
            labels = committed_labels(self.array(path, axis_group(path).axis)[:])
            self._axes[path] = {t: i for i, t in enumerate(labels)}
        return self._axes[path]

    def status(self, path: str) -> np.ndarray:
        """The ingest-status array of a group, trimmed to its committed axis."""
        if path not in self._status:
            self._status[path] = self.array(path, STATUS)[: len(self.axis(path))]
        return self._status[path]

    @cached_property
    def lead_index(self) -> dict[int, int]:
        return {lead: i for i, lead in enumerate(self.spec.leads)}

    def has(self, path: str) -> bool:
        """Whether the store holds group or array `path` (looked up once per reader)."""
        if path not in self._present:
            self._present[path] = path in self.root
        return self._present[path]

    def complete_runs(self, species: str | None = None) -> list[np.datetime64]:
        """Forecast runs where at least one member of `species` (or of any species) is COMPLETE."""
        status = self.status(FORECASTS)
        if species is not None:
            status = status[..., SPECIES_NAMES.index(species)]
        complete = (status == Status.COMPLETE).reshape(len(status), -1).any(axis=1)
        return [t for t, i in self.axis(FORECASTS).items() if complete[i]]

    def members(self, species: str, run: np.datetime64, lead: int) -> np.ndarray:
        """(member, level, lat, lon) float32 at one run and lead; NaN for members not COMPLETE."""
        pos = self.axis(FORECASTS)[np.datetime64(run, "h")]
        return self._committed_members(
            self.array(FORECASTS, species)[pos, self.lead_index[lead]], species, pos
        )

    def _committed_members(self, data: np.ndarray, species: str, pos: int) -> np.ndarray:
        committed = self.status(FORECASTS)[pos, :, SPECIES_NAMES.index(species)] == Status.COMPLETE
        data[~committed] = np.nan
        return data

    def sample(
        self, species: Sequence[str], run: np.datetime64, lead: int, *, target: str = "analysis"
    ) -> tuple[np.ndarray, list[np.ndarray | None]]:
        """The members of every species at one run and lead (species, member, level, lat, lon; NaN where not
        COMPLETE) and the `target` of each at the valid time (None where not COMPLETE), read concurrently."""
        pos, lead_pos = self.axis(FORECASTS)[np.datetime64(run, "h")], self.lead_index[lead]
        valid = np.datetime64(run, "h") + np.timedelta64(lead, "h")
        group = target_group(target)
        truths = [sp for sp in species if self.analysis_complete(sp, valid, target=target)]
        reads = [self.array(FORECASTS, sp).async_array.getitem((pos, lead_pos)) for sp in species]
        reads += [self.array(group, sp).async_array.getitem((self.axis(group)[valid],)) for sp in truths]
        fields = sync(_gather(reads))
        members = np.stack([self._committed_members(f, sp, pos) for f, sp in zip(fields, species)])
        analysis = dict(zip(truths, fields[len(species) :]))
        return members, [analysis.get(sp) for sp in species]

    def member_presence(self, species: str, run: np.datetime64) -> np.ndarray:
        """Boolean (member,): which members are COMPLETE for this run and species."""
        pos = self.axis(FORECASTS)[np.datetime64(run, "h")]
        return self.status(FORECASTS)[pos, :, SPECIES_NAMES.index(species)] == Status.COMPLETE

    def analysis_complete(self, species: str, valid_time: np.datetime64, *, target: str = "analysis") -> bool:
        """Whether the `target` (the analysis, or a reanalysis) of `species` at `valid_time` is committed."""
        group = target_group(target)
        if not self.has(group):
            return False
        pos = self.axis(group).get(np.datetime64(valid_time, "h"))
        return pos is not None and self.status(group)[pos, SPECIES_NAMES.index(species)] == Status.COMPLETE

    def analysis(
        self, species: str, valid_time: np.datetime64, level: int | None = None, *, target: str = "analysis"
    ) -> np.ndarray | None:
        """(level, lat, lon) `target` (the analysis, or a reanalysis) at a valid time (with `level`, the
        (lat, lon) field of that level index alone), or None when it is not COMPLETE."""
        if not self.analysis_complete(species, valid_time, target=target):
            return None
        group = target_group(target)
        array = self.array(group, species)
        pos = self.axis(group)[np.datetime64(valid_time, "h")]
        return array[pos] if level is None else array[pos, level]

    def meteo_complete(self, variable: str, run: np.datetime64) -> bool:
        """Whether the meteo predictor `variable` of `run` is committed."""
        pos = self.axis(METEO).get(np.datetime64(run, "h")) if self.has(METEO) else None
        variable_index = list(METEO_VARIABLES).index(variable)
        return pos is not None and self.status(METEO)[pos, variable_index] == Status.COMPLETE

    def meteo(self, variable: str, run: np.datetime64, lead: int) -> np.ndarray | None:
        """(lat, lon) meteo predictor of a run at one lead, or None when it is not COMPLETE."""
        if not self.meteo_complete(variable, run):
            return None
        return self.array(METEO, variable)[self.axis(METEO)[np.datetime64(run, "h")], self.lead_index[lead]]

    def observations(self, species: str, valid_time: np.datetime64) -> np.ndarray | None:
        """(station,) observations at a valid time (NaN where a station has none), or None when the store
        has no stations or that hour is not COMPLETE."""
        if not self.has(OBSERVATIONS):
            return None
        pos = self.axis(OBSERVATIONS).get(np.datetime64(valid_time, "h"))
        if pos is None or self.status(OBSERVATIONS)[pos, SPECIES_NAMES.index(species)] != Status.COMPLETE:
            return None
        return self.array(OBSERVATIONS, species)[pos]

    def product_status(self, name: str, species: str, run: np.datetime64) -> Status:
        """Status of one product run for one species (PENDING when the product or run is missing)."""
        path = product_group(name).path
        if not self.has(path):
            return Status.PENDING
        pos = self.axis(path).get(np.datetime64(run, "h"))
        if pos is None:
            return Status.PENDING
        return Status(int(self.status(path)[pos, SPECIES_NAMES.index(species)]))

    def product(self, name: str, species: str, run: np.datetime64, lead: int) -> np.ndarray | None:
        """(level, lat, lon) of a product at one run and lead, or None when not COMPLETE."""
        if self.product_status(name, species, run) != Status.COMPLETE:
            return None
        path = product_group(name).path
        return self.array(path, species)[self.axis(path)[np.datetime64(run, "h")], self.lead_index[lead]]


def target_group(target: str) -> str:
    """The group of a target name (`layout.TARGETS`); ValueError naming the known ones."""
    try:
        return TARGETS[target]
    except KeyError:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}") from None


async def _gather(reads: list) -> list[np.ndarray]:
    """Await zarr reads together, on zarr's event loop."""
    return list(await asyncio.gather(*reads))
