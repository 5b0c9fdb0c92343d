"""A torch Dataset over the store: one sample per (run, lead), all configured species at the configured levels
(`data.levels`, level 0 by default; several levels are blocks of channels, `features.blocks`), and the
phase-two predictors switched on (`data.predictors`, surface fields whatever the levels).

The sample index is built from the ingest status when the dataset is created; the store itself is
opened lazily in each process that reads samples (DataLoader workers, Ray Train workers), never
pickled with the dataset. Only runs of the split's period are indexed, so the test period is never
read by training or model selection. A run whose meteo or recent analysis a predictor needs is indexed only
where the store holds it, unless the config trains with predictor dropout (then it counts as dropped).

With `data.patches`, a sample is the patches cut from one (run, lead) (`dlens.train.patches`): random places
in training, the same places at every epoch in validation; `collate` makes their batches.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from dlens.common.layout import AXIS_GROUPS, FORECASTS, STATS, TARGETS
from dlens.common.reader import StoreReader
from dlens.common.writer import normalisation
from dlens.model.features import (
    Normaliser,
    blocks,
    level_blocks,
    level_positions,
    normalise_members,
    time_values,
)
from dlens.model.predictor_store import missing_predictors, read_predictors, run_predictors
from dlens.model.predictors import PredictorEncoder, RawPredictors, Standardisation
from dlens.model.static import STATIC_FIELDS, static_fields
from dlens.train.config import DataConfig, Period
from dlens.train.patches import collate_patches, crop_sample, patch_origins

Split = Literal["train", "validation", "test"]
#: The most each process keeps of the runs' shared predictors (a full-grid run's recent analysis is ≈ 85 MB).
SHARED_CACHE_BYTES = 512 * 2**20


def store_normaliser(url: str, period: Period | None = None) -> Normaliser:
    """The per-species log1p statistics of the forecasts: over the runs of `period` (the training period,
    so that nothing of the validation and test periods shapes the inputs), else over every run, as the
    ingest stored them."""
    reader = StoreReader(url)
    if period is None:
        stats = reader.root[FORECASTS].attrs.asdict().get("normalisation")
    else:
        first, last = np.datetime64(period.start, "D"), np.datetime64(period.end, "D")
        positions = [p for t, p in reader.axis(FORECASTS).items() if first <= np.datetime64(t, "D") <= last]
        rows = reader.array(FORECASTS, STATS).oindex[positions] if positions else np.empty((0, 0, 0))
        stats = normalisation(rows, reader.status(FORECASTS)[positions], AXIS_GROUPS[FORECASTS])
    if not stats:
        where = f" in {period.start}..{period.end}" if period else ""
        raise ValueError(f"store {url!r} has no normalisation statistics{where}: ingest some forecasts first")
    return Normaliser.from_attrs(stats)


def static_names(config: DataConfig) -> tuple[str, ...]:
    """The static channels a config trains with."""
    return STATIC_FIELDS if config.static else ()


def drop_members(members: np.ndarray, rate: float, rng: np.random.Generator, keep: int = 3) -> np.ndarray:
    """Members (species, member, H, W) with each present member removed with probability `rate`.

    The same members are dropped for every species (a CTM arrives with all its species) and, for blocks of
    several levels (block, member, H, W), at every level, and at least `keep` present members stay.
    """
    present = np.isfinite(members).reshape(*members.shape[:2], -1).any(axis=(0, 2))
    candidates = np.flatnonzero(present)
    dropped = candidates[rng.random(len(candidates)) < rate]
    if len(candidates) - len(dropped) < keep:
        dropped = dropped[: max(0, len(candidates) - keep)]
    out = members.copy()
    out[:, dropped] = np.nan
    return out


class StoreDataset(Dataset):
    """Samples of one split: normalised members, static fields, time encodings, encoded predictors,
    normalised target, mask. `standardisation`: the meteo predictors' (`store_standardisation` of the
    training period, computed once by the caller and recorded in the model card)."""

    def __init__(
        self,
        url: str,
        config: DataConfig,
        split: Split,
        normaliser: Normaliser,
        standardisation: Standardisation,
        training: bool = False,
    ):
        self.url, self.config, self.split = url, config, split
        self.normaliser, self.training = normaliser, training
        self.encoder = PredictorEncoder(config.predictors, config.species, standardisation)
        self._reader: StoreReader | None = None
        self._static: np.ndarray | None = None
        self._rng: np.random.Generator | None = None
        self._shared: dict[np.datetime64, RawPredictors] = {}
        reader = StoreReader(url)
        self.leads = config.leads or reader.spec.leads
        missing = sorted(set(self.leads) - set(reader.spec.leads))
        if missing:
            raise ValueError(f"leads {missing} are not in store {url!r} (it has {list(reader.spec.leads)})")
        self.level_positions = level_positions(config.levels, reader.spec.levels, f"store {url!r}")
        self.block_species = tuple(sp for sp, _ in blocks(config.species, config.levels))
        if config.predictors.meteo_change and 0 not in reader.spec.leads:
            raise ValueError(f"meteo_change needs lead 0 in store {url!r} (it has {list(reader.spec.leads)})")
        self.domain_shape = reader.spec.domain.shape
        if config.patches is not None:
            rows, cols = config.patches.size
            if rows > self.domain_shape[0] or cols > self.domain_shape[1]:
                raise ValueError(
                    f"patches of {rows} × {cols} do not fit in store {url!r}'s domain of "
                    f"{self.domain_shape[0]} × {self.domain_shape[1]}"
                )
        #: the shape of the fields the model trains on: the patches', else the domain's
        self.shape = self.domain_shape if config.patches is None else config.patches.size
        #: the DataLoader's collate_fn: None (torch's default) for whole fields
        self.collate = None if config.patches is None else collate_patches
        self.grid = (reader.spec.domain.latitude, reader.spec.domain.longitude)
        self.samples = self._index(reader)
        if not self.samples:
            period = getattr(config, split)
            raise ValueError(
                f"no {split} sample in store {url!r} from {period.start} to {period.end}: no run there has "
                f"its target, the {config.target} (group {TARGETS[config.target]}), at the valid times"
            )

    def _index(self, reader: StoreReader) -> list[tuple[np.datetime64, int]]:
        period = getattr(self.config, self.split)
        first, last = np.datetime64(period.start, "h"), np.datetime64(period.end, "h")
        species = self.config.species
        runs = set.intersection(*(set(reader.complete_runs(sp)) for sp in species))
        predictors = self.config.predictors
        return [
            (run, lead)
            for run in sorted(r for r in runs if first <= r <= last)
            if predictors.dropout > 0 or not missing_predictors(reader, self.encoder, run)
            for lead in self.leads
            if all(
                reader.analysis_complete(sp, run + np.timedelta64(lead, "h"), target=self.config.target)
                for sp in self.config.species
            )
        ]

    def __getstate__(self) -> dict:
        # made again in each process
        return {**self.__dict__, "_reader": None, "_static": None, "_rng": None, "_shared": {}}

    @property
    def rng(self) -> np.random.Generator:
        """Member dropout's generator, one per process, seeded from torch's: the training loop seeds torch,
        and each DataLoader worker gets its own seed from it, so a run's dropout is reproducible."""
        if self._rng is None:
            self._rng = np.random.default_rng(torch.initial_seed())
        return self._rng

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            self._reader = StoreReader(self.url)
        return self._reader

    def static(self) -> np.ndarray:
        """The static channels, read once per process."""
        if self._static is None:
            self._static = static_fields(self.reader, static_names(self.config))
        return self._static

    def run_predictors(self, run: np.datetime64) -> RawPredictors:
        """What every lead of `run` shares (the meteo at the run, the recent analysis), read once per
        process and kept while the cache holds less than `SHARED_CACHE_BYTES` (the oldest run goes first)."""
        if run not in self._shared:
            self._shared[run] = run_predictors(self.reader, self.encoder, run)
            while len(self._shared) > 1 and sum(map(_nbytes, self._shared.values())) > SHARED_CACHE_BYTES:
                del self._shared[next(iter(self._shared))]
        return self._shared[run]

    def predictors(self, run: np.datetime64, lead: int, valid: np.datetime64) -> np.ndarray:
        """The encoded predictors of a sample; in training each optional one dropped with the configured
        probability."""
        predictors = self.config.predictors
        raw = read_predictors(self.reader, self.encoder, run, lead, self.run_predictors(run))
        dropped = set()
        if self.training and predictors.dropout > 0:
            dropped = {n for n in predictors.optional if self.rng.random() < predictors.dropout}
            if "meteo" in dropped and predictors.meteo_change:
                dropped.add("meteo_change")  # as at inference: a request without meteo loses its change too
        return self.encoder.encode(raw, self.normaliser.forward, valid, *self.grid, frozenset(dropped))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """One sample (`field`), or with `data.patches` its patches (`patches.crop_sample`: a leading patch
        dimension and each patch's `origin`)."""
        sample = self.field(index)
        patches = self.config.patches
        if patches is None:
            return sample
        # training: new places every time; validation and test: the same places at every epoch
        rng = self.rng if self.training else np.random.default_rng(index)
        origins = patch_origins(self.domain_shape, patches.size, patches.per_sample, rng)
        return crop_sample(sample, origins, patches.size)

    def field(self, index: int) -> dict[str, torch.Tensor]:
        """One sample over the whole domain: normalised members (block, member, H, W; NaN where absent or
        dropped), static fields, time encodings, the encoded predictors (`predictors.encoded_names`; none: 0
        channels), the normalised target (block, H, W) and its mask; `features.assemble_inputs` makes the
        model inputs of a batch. The blocks are `features.blocks`: per species, its configured levels."""
        run, lead = self.samples[index]
        species = self.config.species
        members, analysis = self.reader.sample(species, run, lead, target=self.config.target)
        members = level_blocks(members, self.level_positions)
        if self.training and self.config.member_dropout > 0:
            members = drop_members(members, self.config.member_dropout, self.rng)
        valid = run + np.timedelta64(lead, "h")
        # the index holds complete analyses only
        truth = np.concatenate([field[list(self.level_positions)] for field in analysis])
        target = np.stack([self.normaliser.forward(sp, truth[k]) for k, sp in enumerate(self.block_species)])
        mask = np.isfinite(truth)
        return {
            "members": torch.from_numpy(normalise_members(members, self.block_species, self.normaliser)),
            "static": torch.from_numpy(self.static()),
            "time": torch.from_numpy(time_values(lead, valid)),
            "predictors": torch.from_numpy(self.predictors(run, lead, valid)),
            "target": torch.from_numpy(np.where(mask, target, 0.0).astype(np.float32)),
            "mask": torch.from_numpy(mask),
        }


def _nbytes(raw: RawPredictors) -> int:
    return sum(a.nbytes for a in (raw.meteo, raw.meteo_at_run, raw.recent_analysis) if a is not None)
