"""The training losses against a direct computation in NumPy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dlens.model.features import Normaliser
from dlens.train.loop import cosine_learning_rate
from dlens.train.objective import Objective

NORMALISER = Normaliser({"o3": 3.8, "so2": 1.4}, {"o3": 0.4, "so2": 0.3})
SPECIES = ("o3", "so2")


def _fields(seed: int) -> tuple[torch.Tensor, ...]:
    """prediction, target, mask, median: (batch 3, species 2, 5, 6); one field has no cell at all."""
    g = torch.Generator().manual_seed(seed)
    prediction, target, median = (torch.randn(3, 2, 5, 6, generator=g) for _ in range(3))
    mask = torch.rand(3, 2, 5, 6, generator=g) > 0.2
    mask[1, 0] = False
    return prediction, target, mask, median


def _concentration_mse(z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """(batch, species) MSE in concentrations / the species' step, with NumPy."""
    out = np.zeros(mask.shape[:2])
    for k, sp in enumerate(SPECIES):
        mean, std = NORMALISER.log1p_mean[sp], NORMALISER.log1p_std[sp]
        scale = np.expm1(mean + std) - np.expm1(mean)
        for b in range(mask.shape[0]):
            m = mask[b, k].numpy()
            p = NORMALISER.inverse(sp, z[b, k].numpy().astype(np.float64))
            t = NORMALISER.inverse(sp, target[b, k].numpy().astype(np.float64))
            out[b, k] = (((p - t) / scale)[m] ** 2).mean() if m.any() else 0.0
    return out


def _mean_over_fields(values: np.ndarray, mask: torch.Tensor) -> float:
    return float(values.sum() / (mask.sum(dim=(-2, -1)) > 0).sum().item())


def test_normalised_loss_is_the_mean_of_per_field_mse():
    prediction, target, mask, median = _fields(0)
    loss = Objective("normalised", NORMALISER, SPECIES, torch.device("cpu"))(prediction, target, mask, median)
    per_field = np.array([
        [((prediction[b, k] - target[b, k])[mask[b, k]] ** 2).mean().item() if mask[b, k].any() else 0.0
         for k in range(2)]
        for b in range(3)
    ])  # fmt: skip
    assert loss.item() == pytest.approx(_mean_over_fields(per_field, mask), rel=1e-5)


def test_concentration_and_relative_losses_in_concentrations():
    prediction, target, mask, median = _fields(1)
    cpu = torch.device("cpu")
    model_mse = _concentration_mse(prediction, target, mask)
    median_mse = _concentration_mse(median, target, mask)
    concentration = Objective("concentration", NORMALISER, SPECIES, cpu)(prediction, target, mask, median)
    assert concentration.item() == pytest.approx(_mean_over_fields(model_mse, mask), rel=1e-4)
    relative = Objective("relative", NORMALISER, SPECIES, cpu)(prediction, target, mask, median)
    ratio = np.where(mask.sum(dim=(-2, -1)).numpy() > 0, model_mse / (median_mse + 1e-4), 0.0)
    assert relative.item() == pytest.approx(_mean_over_fields(ratio, mask), rel=1e-4)
    # The median scores exactly 1 per field against itself (but for the small guard in the denominator).
    itself = Objective("relative", NORMALISER, SPECIES, cpu)(median, target, mask, median)
    assert itself.item() == pytest.approx(1.0, rel=1e-3)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="unknown loss"):
        Objective("huber", NORMALISER, SPECIES, torch.device("cpu"))


def test_cosine_schedule_runs_from_peak_to_floor():
    rates = [cosine_learning_rate(0.01, epoch, 5) for epoch in range(5)]
    assert rates[0] == pytest.approx(0.01) and rates[-1] == pytest.approx(0.0005)
    assert all(a > b for a, b in itertools.pairwise(rates))
