"""The ensemble heads: a correction to the median, or a mixture of the present members."""

import numpy as np
import torch

from dlens.common.species import MEMBERS
from dlens.model.features import Normaliser
from dlens.model.head import EnsembleModel, head_channels
from dlens.model.inference import model_inputs

SPECIES = ("o3", "no2")
NORM = Normaliser({"o3": 3.5, "no2": 2.8}, {"o3": 0.6, "no2": 0.9})
ABSENT = [1, 4, 9]


def inputs_and_median(absent=ABSENT) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(0)
    members = rng.gamma(4.0, 10.0, size=(2, 11, 6, 8)).astype(np.float32)
    members[:, absent] = np.nan
    inputs, median = model_inputs(
        members[None], SPECIES, NORM, np.zeros((0, 6, 8)), [24], [np.datetime64("2025-07-01")]
    )
    return inputs, median[0].numpy()


def model(head: str, channels: int, logits: torch.Tensor | None = None) -> EnsembleModel:
    """A 1x1 convolution backbone with zero weights: its outputs are its biases."""
    out = head_channels(head, len(SPECIES))
    backbone = torch.nn.Conv2d(channels, out, 1)
    torch.nn.init.zeros_(backbone.weight)
    torch.nn.init.zeros_(backbone.bias)
    if logits is not None:
        with torch.no_grad():
            backbone.bias.copy_(logits)
    return EnsembleModel(backbone, len(SPECIES), head)


def test_an_untrained_correction_head_is_the_median_of_the_members_present():
    inputs, median = inputs_and_median()
    out = model("correction", inputs.shape[1])(inputs)
    np.testing.assert_allclose(out[0].detach().numpy(), median, atol=1e-6)


def test_a_mixture_head_weighs_only_the_members_present():
    inputs, _ = inputs_and_median()
    m = len(MEMBERS)
    logits = torch.zeros(len(SPECIES), m + 1)
    logits[:, ABSENT] = 50.0  # an absent member with a large logit still gets no weight
    logits[:, 0] = 2.0
    net = model("mixture", inputs.shape[1], logits.flatten())
    z = inputs[0, : len(SPECIES) * (2 * m + 2)].unflatten(0, (len(SPECIES), 2 * m + 2))[:, :m]
    present = [k for k in range(m) if k not in ABSENT]
    weights = torch.softmax(logits[:, present], dim=1)
    expected = (weights[:, :, None, None] * z[:, present]).sum(dim=1)
    np.testing.assert_allclose(net(inputs)[0].detach().numpy(), expected.numpy(), atol=1e-5)
    assert np.isfinite(net(inputs_and_median(absent=list(range(11)))[0]).detach().numpy()).all()
