"""The training loss, on the model's normalised fields, per field (sample × species) then averaged.

- `normalised`: MSE in normalised (log) units: every cell alike, relative errors.
- `concentration`: MSE in concentrations (the unit verification scores), each species divided by a
  typical concentration step so that every species counts.
- `relative` (default): the `concentration` MSE of each field divided by the median's on that field: the
  model minimises its RMSE ratio to the median, so short leads (small errors) count as much as long ones,
  and the product improves everywhere rather than mostly where errors are largest.
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from dlens.model.features import Normaliser

Loss = Literal["normalised", "concentration", "relative"]
LOSSES = get_args(Loss)


class Objective:
    """Per-field losses and their mean, for one loss kind and one species order."""

    def __init__(self, kind: Loss, normaliser: Normaliser, species: tuple[str, ...], device: torch.device):
        if kind not in LOSSES:
            raise ValueError(f"unknown loss {kind!r}; expected one of {LOSSES}")
        self.kind = kind

        def column(values: dict[str, float]) -> torch.Tensor:
            data = [values[sp] for sp in species]
            return torch.tensor(data, dtype=torch.float32, device=device).view(1, -1, 1, 1)

        self.mean, self.std = column(normaliser.log1p_mean), column(normaliser.log1p_std)
        self.scale = torch.expm1(self.mean + self.std) - torch.expm1(self.mean)

    def _concentration(self, z: torch.Tensor) -> torch.Tensor:
        """Normalised fields (batch, species, H, W) → concentrations / the species' typical step."""
        return torch.expm1(z.clamp(-10.0, 10.0) * self.std + self.mean).clamp(min=0.0) / self.scale

    def _field_mse(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.kind == "normalised":
            errors = (pred - target) ** 2
        else:
            errors = (self._concentration(pred) - self._concentration(target)) ** 2
        return (errors * weight).sum(dim=(-2, -1)) / weight.sum(dim=(-2, -1)).clamp(min=1.0)

    def per_field(
        self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, median: torch.Tensor
    ) -> torch.Tensor:
        """(batch, species) losses over the cells where `mask` is set; fields without any cell give 0."""
        weight = mask.to(prediction.dtype)
        loss = self._field_mse(prediction, target, weight)
        if self.kind == "relative":
            loss = loss / (self._field_mse(median, target, weight) + 1e-4)
        return loss * (weight.sum(dim=(-2, -1)) > 0)

    def __call__(
        self, prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, median: torch.Tensor
    ) -> torch.Tensor:
        """The mean of the per-field losses over fields with at least one cell."""
        fields = (mask.sum(dim=(-2, -1)) > 0).sum().clamp(min=1)
        return self.per_field(prediction, target, mask, median).sum() / fields
