"""Model inputs and targets from raw fields (DESIGN §7): normalisation, channels, member dropout.

Concentrations go through z = (log1p(x) − μ) / σ with μ, σ the per-species log1p statistics the
ingest stored in the `forecasts` group's `normalisation` attribute. Per species the channels are:
the 11 members (0 where absent), their presence mask, the median and the spread of the members
present. Then static fields and time encodings. The model predicts, per species, a correction to
the normalised median, so an untrained model already reproduces the Median ENSEMBLE.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from dlens.common.species import MEMBERS

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


def channel_names(species: tuple[str, ...], static: tuple[str, ...]) -> list[str]:
    """The input channels, in order."""
    names = []
    for sp in species:
        names += [f"{sp}:{m}" for m in MEMBERS] + [f"{sp}:present:{m}" for m in MEMBERS]
        names += [f"{sp}:median", f"{sp}:spread"]
    return names + [f"static:{s}" for s in static] + [f"time:{t}" for t in TIME_CHANNELS]


def drop_members(members: np.ndarray, rate: float, rng: np.random.Generator, keep: int = 3) -> np.ndarray:
    """Members (species, member, H, W) with each present member removed with probability `rate`.

    The same members are dropped for every species (a CTM arrives with all its species), and at least
    `keep` present members stay.
    """
    present = np.isfinite(members).reshape(*members.shape[:2], -1).any(axis=(0, 2))
    candidates = np.flatnonzero(present)
    dropped = candidates[rng.random(len(candidates)) < rate]
    if len(candidates) - len(dropped) < keep:
        dropped = dropped[: max(0, len(candidates) - keep)]
    out = members.copy()
    out[:, dropped] = np.nan
    return out


def median_field(z_members: np.ndarray) -> np.ndarray:
    """Per point median of the present (finite) members along axis −3; 0 where none is present.

    The values of `np.nanmedian`, several times faster: one sort puts the NaNs last, then the middle of
    the present members is picked per point.
    """
    ordered = np.sort(z_members, axis=-3)
    count = np.isfinite(z_members).sum(axis=-3, keepdims=True)
    low = np.take_along_axis(ordered, np.maximum(count - 1, 0) // 2, axis=-3)
    high = np.take_along_axis(ordered, count // 2, axis=-3)
    return np.where(count > 0, (low + high) / 2, 0.0).squeeze(-3).astype(np.float32)


def build_inputs(
    members: np.ndarray,
    species: tuple[str, ...],
    normaliser: Normaliser,
    static: np.ndarray,
    lead: int,
    valid_time: np.datetime64,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (C, H, W), normalised median (species, H, W)) from raw members (species, member, H, W)."""
    parts, medians = [], []
    for k, sp in enumerate(species):
        z = normaliser.forward(sp, members[k])
        z[~np.isfinite(members[k])] = np.nan
        present = np.isfinite(z)
        median = median_field(z)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            spread = np.nan_to_num(np.nanstd(z, axis=0)).astype(np.float32)
        parts += [np.nan_to_num(z), present.astype(np.float32), median[None], spread[None]]
        medians.append(median)
    h, w = members.shape[-2:]
    parts.append(static.astype(np.float32))
    parts.append(time_encoding(lead, valid_time, (h, w)))
    return np.concatenate(parts).astype(np.float32), np.stack(medians)


def time_encoding(lead: int, valid_time: np.datetime64, shape: tuple[int, int]) -> np.ndarray:
    """Constant channels: lead / 96 h, hour of day and day of year as sin/cos."""
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
    return np.broadcast_to(np.array(values, dtype=np.float32)[:, None, None], (len(values), *shape)).copy()
