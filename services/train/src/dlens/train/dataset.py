"""A torch Dataset over the store: one sample per (run, lead) at level 0, all configured species.

The sample index is built from the ingest status when the dataset is created; the store itself is
opened lazily in each process that reads samples (DataLoader workers, Ray Train workers), never
pickled with the dataset. Only runs of the split's period are indexed, so the test period is never
read by training or model selection.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from dlens.common.layout import FORECASTS, STATIC
from dlens.common.reader import StoreReader
from dlens.train.config import DataConfig
from dlens.train.features import Normaliser, build_inputs, drop_members

Split = Literal["train", "validation", "test"]


def store_normaliser(url: str) -> Normaliser:
    """The per-species log1p statistics the ingest stored with the forecasts."""
    attrs = StoreReader(url).root[FORECASTS].attrs.asdict()
    if not attrs.get("normalisation"):
        raise ValueError(f"store {url!r} has no normalisation statistics: ingest some forecasts first")
    return Normaliser.from_attrs(attrs["normalisation"])


def static_fields(reader: StoreReader, enabled: bool) -> np.ndarray:
    """The static channels: land-sea mask and orography / 1000 m (zeros where the store has none)."""
    if not enabled:
        return np.zeros((0, *reader.spec.domain.shape), dtype=np.float32)
    g = reader.root[STATIC]
    return np.nan_to_num(np.stack([g["land_sea_mask"][:], g["orography"][:] / 1000.0])).astype(np.float32)


class StoreDataset(Dataset):
    """Samples of one split: inputs, the normalised median, the normalised target and its mask."""

    def __init__(
        self, url: str, config: DataConfig, split: Split, normaliser: Normaliser, training: bool = False
    ):
        self.url, self.config, self.split = url, config, split
        self.normaliser, self.training = normaliser, training
        self._reader: StoreReader | None = None
        self._static: np.ndarray | None = None
        reader = StoreReader(url)
        self.leads = config.leads or reader.spec.leads
        missing = sorted(set(self.leads) - set(reader.spec.leads))
        if missing:
            raise ValueError(f"leads {missing} are not in store {url!r} (it has {list(reader.spec.leads)})")
        self.shape = reader.spec.domain.shape
        self.samples = self._index(reader)
        if not self.samples:
            period = getattr(config, split)
            raise ValueError(f"no {split} sample in store {url!r} from {period.start} to {period.end}")

    def _index(self, reader: StoreReader) -> list[tuple[np.datetime64, int]]:
        period = getattr(self.config, self.split)
        first, last = np.datetime64(period.start, "h"), np.datetime64(period.end, "h")
        species = self.config.species
        runs = set.intersection(*(set(reader.complete_runs(sp)) for sp in species))
        return [
            (run, lead)
            for run in sorted(r for r in runs if first <= r <= last)
            for lead in self.leads
            if all(
                reader.analysis_complete(sp, run + np.timedelta64(lead, "h")) for sp in self.config.species
            )
        ]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_reader": None, "_static": None}  # opened again in each process

    @property
    def reader(self) -> StoreReader:
        if self._reader is None:
            self._reader = StoreReader(self.url)
        return self._reader

    def static(self) -> np.ndarray:
        """Land-sea mask and orography / 1000 m (zeros where the store has none), read once."""
        if self._static is None:
            self._static = static_fields(self.reader, self.config.static)
        return self._static

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        run, lead = self.samples[index]
        species = self.config.species
        members = np.stack([self.reader.members(sp, run, lead)[:, 0] for sp in species])
        if self.training and self.config.member_dropout > 0:
            members = drop_members(members, self.config.member_dropout, np.random.default_rng())
        valid = run + np.timedelta64(lead, "h")
        inputs, median = build_inputs(members, species, self.normaliser, self.static(), lead, valid)
        truth = np.stack([self.reader.analysis(sp, valid)[0] for sp in species])
        target = np.stack([self.normaliser.forward(sp, truth[k]) for k, sp in enumerate(species)])
        mask = np.isfinite(truth)
        return {
            "inputs": torch.from_numpy(inputs),
            "median": torch.from_numpy(median),
            "target": torch.from_numpy(np.where(mask, target, 0.0).astype(np.float32)),
            "mask": torch.from_numpy(mask),
        }
