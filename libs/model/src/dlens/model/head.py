"""How a backbone's outputs become the ensemble: a correction to the median, or a mixture of the members.

Both read the per-species blocks of the inputs (features.channel_names): the normalised members, their
presence and the median of those present. A model of several levels has one block per species and level
(`features.blocks`), and its head works on each block alone: "species" below counts blocks.
"""

from __future__ import annotations

from typing import Literal

import torch

from dlens.common.species import MEMBERS

Head = Literal["correction", "mixture"]
#: Per species: the members, their presence, the median and the spread (features.channel_names).
BLOCK = 2 * len(MEMBERS) + 2
_ABSENT_LOGIT = -1.0e4


def head_channels(head: Head, species: int) -> int:
    """Backbone outputs a head needs for `species` species."""
    return species if head == "correction" else species * (len(MEMBERS) + 1)


class EnsembleModel(torch.nn.Module):
    """Normalised inputs (batch, C, H, W) → the normalised ensemble (batch, species, H, W).

    `correction`: the median of the present members plus the backbone's output.
    `mixture`: per point and species, a softmax over the present members of the backbone's member logits
    weighs the members, plus the backbone's correction: a learned, local Weighted ENSEMBLE.
    """

    def __init__(self, backbone: torch.nn.Module, species: int, head: Head):
        super().__init__()
        self.backbone, self.species, self.head = backbone, species, head

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.backbone(inputs).float()
        m = len(MEMBERS)
        blocks = inputs[:, : self.species * BLOCK].float().unflatten(1, (self.species, BLOCK))
        if self.head == "correction":
            return blocks[:, :, 2 * m] + out
        members, present = blocks[:, :, :m], blocks[:, :, m : 2 * m]
        out = out.unflatten(1, (self.species, m + 1))
        weights = out[:, :, :m].masked_fill(present < 0.5, _ABSENT_LOGIT).softmax(dim=2)
        return (weights * members).sum(dim=2) + out[:, :, m]
