"""Model inputs from raw fields (DESIGN §7): normalisation, channels, time encodings (train and serve).

Concentrations go through z = (log1p(x) − μ) / σ with μ, σ the per-species log1p statistics the
ingest stored in the `forecasts` group's `normalisation` attribute. Per variable block (a species at one
level, `blocks`: species by species, each at the model's levels in ascending order; a surface model has one
block per species) the channels are: the 11 members (0 where absent), their presence mask, the median and
the spread of the members present. Then static fields and time encodings, then the phase-two predictors
switched on (`dlens.model.predictors`): the member statistics (per block), then the channels the data loader
encodes (surface fields). The data loader delivers the normalised members and those encoded channels;
presence, median, spread, statistics and the constant channels are assembled in batches where the model runs.
A species' normalisation is shared by its levels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlens.common.species import MEMBERS
from dlens.model.predictors import METEO_NAMES, Predictors, encoded_names, statistics_names

#: Time encodings appended after the per-species channels.
TIME_CHANNELS = ("lead", "hour_sin", "hour_cos", "doy_sin", "doy_cos")
#: The levels of a surface model (metres): its channels carry no level in their names.
SURFACE = (0,)


def blocks(species: tuple[str, ...], levels: tuple[int, ...] = SURFACE) -> list[tuple[str, int]]:
    """The model's variable blocks, in channel and output order: (species, level in metres), species by
    species, each at every level of `levels`."""
    return [(sp, level) for sp in species for level in levels]


def block_labels(species: tuple[str, ...], levels: tuple[int, ...] = SURFACE) -> tuple[str, ...]:
    """The name of each block in the channel names: the species alone for a surface model (its channels are
    those of a model from before the levels), else `<species>@<level>m` (e.g. `o3@500m`)."""
    if tuple(levels) == SURFACE:
        return tuple(species)
    return tuple(f"{sp}@{level}m" for sp, level in blocks(species, levels))


@dataclass(frozen=True)
class Normaliser:
    """log1p + standardisation per species, from the store's statistics."""

    log1p_mean: dict[str, float]
    log1p_std: dict[str, float]

    @classmethod
    def from_attrs(cls, normalisation: dict[str, dict]) -> Normaliser:
        return cls(
            {sp: float(v["log1p_mean"]) for sp, v in normalisation.items()},
            {sp: max(float(v["log1p_std"]), 1e-6) for sp, v in normalisation.items()},
        )

    def forward(self, species: str, x: np.ndarray) -> np.ndarray:
        return ((np.log1p(np.maximum(x, 0.0)) - self.log1p_mean[species]) / self.log1p_std[species]).astype(
            np.float32
        )

    def inverse(self, species: str, z: np.ndarray) -> np.ndarray:
        return np.expm1(z * self.log1p_std[species] + self.log1p_mean[species]).clip(min=0.0)


def level_positions(
    levels: tuple[int, ...], stored: tuple[int, ...], where: str = "the store"
) -> tuple[int, ...]:
    """The positions of `levels` (metres) on a store's level axis `stored`; ValueError naming the levels
    that `where` (the store) lacks."""
    missing = [level for level in levels if level not in stored]
    if missing:
        raise ValueError(
            f"levels {', '.join(map(str, missing))} m are not in {where} "
            f"(it has {', '.join(map(str, stored))} m)"
        )
    return tuple(list(stored).index(level) for level in levels)


def level_blocks(members: np.ndarray, positions: tuple[int, ...]) -> np.ndarray:
    """Members (species, member, level, H, W) at the store's level `positions` as blocks (species × level,
    member, H, W): species by species, each at those levels in order (`features.blocks`)."""
    picked = members[:, :, list(positions)]  # (species, member, level, H, W)
    return np.ascontiguousarray(picked.swapaxes(1, 2).reshape(-1, *picked.shape[1:2], *picked.shape[3:]))


def channel_names(
    species: tuple[str, ...],
    static: tuple[str, ...],
    predictors: Predictors | None = None,
    meteo_names: tuple[str, ...] = METEO_NAMES,
    levels: tuple[int, ...] = SURFACE,
) -> list[str]:
    """The input channels, in order (`meteo_names`: the meteo variables of the model's meteo predictors;
    `levels`: the model's levels, whose blocks carry the member channels and their statistics)."""
    names = []
    labels = block_labels(species, levels)
    for label in labels:
        names += [f"{label}:{m}" for m in MEMBERS] + [f"{label}:present:{m}" for m in MEMBERS]
        names += [f"{label}:median", f"{label}:spread"]
    names += [f"static:{s}" for s in static] + [f"time:{t}" for t in TIME_CHANNELS]
    if predictors is not None:
        names += statistics_names(labels, predictors) + encoded_names(species, predictors, meteo_names)
    return names


def normalise_members(members: np.ndarray, species: tuple[str, ...], normaliser: Normaliser) -> np.ndarray:
    """Raw members (species, member, H, W) → normalised float32, NaN where a member is absent; `species`
    names the species of each row (for blocks of several levels, each species once per level)."""
    z = np.stack([normaliser.forward(sp, members[k]) for k, sp in enumerate(species)])
    z[~np.isfinite(members)] = np.nan
    return z


def time_values(lead: int, valid_time: np.datetime64) -> np.ndarray:
    """The time encodings (TIME_CHANNELS): lead / 96 h, hour of day and day of year as sin/cos."""
    t = np.datetime64(valid_time, "h")
    hour = int((t - t.astype("datetime64[D]")).astype(int))
    doy = int((t.astype("datetime64[D]") - t.astype("datetime64[Y]")).astype(int))
    values = [
        lead / 96.0,
        np.sin(2 * np.pi * hour / 24),
        np.cos(2 * np.pi * hour / 24),
        np.sin(2 * np.pi * doy / 365.25),
        np.cos(2 * np.pi * doy / 365.25),
    ]
    return np.array(values, dtype=np.float32)


def member_median(z: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Per point median of the present members along dim 2 of (batch, species, member, H, W); 0 where
    none is present (the values of `nanmedian`: one sort puts the NaNs last)."""
    ordered = torch.sort(z, dim=2).values
    count = present.sum(dim=2, keepdim=True)
    low = ordered.gather(2, (count - 1).clamp(min=0) // 2)
    high = ordered.gather(2, count // 2)
    return torch.where(count > 0, (low + high) / 2, 0.0).squeeze(2)


def member_statistics(z: torch.Tensor, present: torch.Tensor, quantiles: tuple[float, ...]) -> torch.Tensor:
    """(batch, species, 2 + len(quantiles), H, W): min, max and quantiles (linear interpolation, as numpy's
    nanquantile) of the present members along dim 2 of (batch, species, member, H, W); 0 where none is."""
    count = present.sum(dim=2)
    low = torch.where(present, z, torch.inf).amin(dim=2)
    high = torch.where(present, z, -torch.inf).amax(dim=2)
    ordered = torch.sort(torch.where(present, z, torch.inf), dim=2).values  # the absent ones last
    position = (count - 1).clamp(min=0)[:, :, None] * torch.tensor(quantiles, device=z.device)[:, None, None]
    below = position.floor().long()
    weight = (position - below).to(z.dtype)
    lower = ordered.gather(2, below)
    upper = ordered.gather(2, torch.minimum(below + 1, (count - 1).clamp(min=0)[:, :, None]))
    between = torch.where(weight > 0, lower + weight * (upper - lower), lower)
    stats = torch.cat([low[:, :, None], high[:, :, None], between], dim=2)
    return torch.where(count[:, :, None] > 0, stats, 0.0)


def assemble_inputs(
    z: torch.Tensor,
    static: torch.Tensor,
    time: torch.Tensor,
    encoded: torch.Tensor | None = None,
    quantiles: tuple[float, ...] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs (batch, C, H, W) in `channel_names` order and the normalised median (batch, species,
    H, W), from normalised members (batch, species, member, H, W; NaN where absent; "species" are the
    model's blocks, `blocks`, for a model of several levels), static fields
    (batch, C_static, H, W), time encodings (batch, 5) and, for a model with phase-two predictors, the
    channels the loader encoded (batch, C_encoded, H, W) and the quantiles of the member statistics (None:
    no statistics). Batched tensor work: it runs where the model runs (on the GPU in training), not in the
    data loader."""
    present = torch.isfinite(z)
    count = present.sum(dim=2).clamp(min=1)
    median = member_median(z, present)
    z = torch.where(present, z, 0.0)
    mean = z.sum(dim=2) / count
    spread = ((torch.where(present, z - mean[:, :, None], 0.0) ** 2).sum(dim=2) / count).sqrt()
    batch, species, members, h, w = z.shape
    per_species = 2 * members + 2
    statistics = None
    if quantiles is not None:
        statistics = member_statistics(z, present, quantiles).reshape(batch, -1, h, w)
    tail = [static, time[:, :, None, None], statistics, encoded]
    channels = species * per_species + sum(part.shape[1] for part in tail if part is not None)
    # written in place, part by part: a full-grid batch is too large to copy once more
    inputs = torch.empty((batch, channels, h, w), dtype=torch.float32, device=z.device)
    blocks = inputs[:, : species * per_species].view(batch, species, per_species, h, w)
    blocks[:, :, :members] = z
    blocks[:, :, members : 2 * members] = present
    blocks[:, :, 2 * members] = median
    blocks[:, :, 2 * members + 1] = spread
    start = species * per_species
    for part in tail:
        if part is not None:
            inputs[:, start : start + part.shape[1]] = part
            start += part.shape[1]
    return inputs, median
