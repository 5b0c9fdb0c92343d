"""Model inputs from raw fields (DESIGN §7): normalisation, channels, time encodings (train and serve).

Concentrations go through z = (log1p(x) − μ) / σ with μ, σ the per-species log1p statistics the
ingest stored in the `forecasts` group's `normalisation` attribute. Per species the channels are:
the 11 members (0 where absent), their presence mask, the median and the spread of the members
present. Then static fields and time encodings, then the phase-two predictors switched on
(`dlens.model.predictors`): the member statistics, then the channels the data loader encodes. The data
loader delivers the normalised members and those encoded channels; presence, median, spread, statistics and
the constant channels are assembled in batches where the model runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlens.common.species import MEMBERS
from dlens.model.predictors import METEO_NAMES, Predictors, encoded_names, statistics_names

#: Time encodings appended after the per-species channels.
TIME_CHANNELS = ("lead", "hour_sin", "hour_cos", "doy_sin", "doy_cos")


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


def channel_names(
    species: tuple[str, ...],
    static: tuple[str, ...],
    predictors: Predictors | None = None,
    meteo_names: tuple[str, ...] = METEO_NAMES,
) -> list[str]:
    """The input channels, in order (`meteo_names`: the meteo variables of the model's meteo predictors)."""
    names = []
    for sp in species:
        names += [f"{sp}:{m}" for m in MEMBERS] + [f"{sp}:present:{m}" for m in MEMBERS]
        names += [f"{sp}:median", f"{sp}:spread"]
    names += [f"static:{s}" for s in static] + [f"time:{t}" for t in TIME_CHANNELS]
    if predictors is not None:
        names += statistics_names(species, predictors) + encoded_names(species, predictors, meteo_names)
    return names


def normalise_members(members: np.ndarray, species: tuple[str, ...], normaliser: Normaliser) -> np.ndarray:
    """Raw members (species, member, H, W) → normalised float32, NaN where a member is absent."""
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
    H, W), from normalised members (batch, species, member, H, W; NaN where absent), static fields
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
    per_species = torch.cat([z, present.float(), median[:, :, None], spread[:, :, None]], dim=2)
    constants = time[:, :, None, None].expand(-1, -1, h, w)
    parts = [per_species.reshape(batch, species * (2 * members + 2), h, w), static, constants]
    if quantiles is not None:
        parts.append(member_statistics(z, present, quantiles).reshape(batch, -1, h, w))
    if encoded is not None:
        parts.append(encoded)
    return torch.cat(parts, dim=1).float(), median
