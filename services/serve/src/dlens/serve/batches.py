"""One dynamic batch answered sample by sample: one forward pass per model and domain, and where a pass fails
on its input, each of its samples alone, so that a bad sample fails its own request only."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

import numpy as np
import torch

from dlens.serve.problems import StoreUnavailable
from dlens.serve.samples import Sample

#: A forward pass: DL-ENS (sample, species, H, W) of samples of one model and domain.
Forward = Callable[[list[Sample]], Awaitable[np.ndarray]]
#: What a sample gets: its field (species, H, W) or the exception that failed it.
Outcome = np.ndarray | Exception
#: Words of a torch RuntimeError raised by the device rather than by the input.
_DEVICE_WORDS = ("CUDA", "cuDNN", "CUBLAS", "cuBLAS", "NCCL", "out of memory", "device-side")


def is_device_error(exc: BaseException) -> bool:
    """Whether a forward pass failed on the device (out of memory, a CUDA error), which the next request would
    meet too, rather than on its input (a ValueError, a shape a layer refuses)."""
    if isinstance(exc, MemoryError | torch.cuda.OutOfMemoryError | torch.AcceleratorError):
        return True
    return isinstance(exc, RuntimeError) and any(word in str(exc) for word in _DEVICE_WORDS)


async def answer(samples: list[Sample], forward: Forward) -> list[Outcome]:
    """The outcome of each sample: one pass per model and domain; a pass failing on its input is run again
    sample by sample; a device error fails its whole pass."""
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, sample in enumerate(samples):
        groups[(sample.model_id, sample.domain.spec())].append(i)
    outcomes: list[Outcome] = [np.empty(0)] * len(samples)
    for indices in groups.values():
        for i, outcome in zip(indices, await _passes([samples[i] for i in indices], forward)):
            outcomes[i] = outcome
    return outcomes


async def _passes(group: list[Sample], forward: Forward) -> list[Outcome]:
    try:
        return list(await forward(group))
    except Exception as exc:
        if len(group) == 1 or is_device_error(exc) or isinstance(exc, StoreUnavailable):  # not one sample's
            return [exc] * len(group)
    return [(await _passes([sample], forward))[0] for sample in group]
