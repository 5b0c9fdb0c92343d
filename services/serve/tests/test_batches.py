"""A dynamic batch answered sample by sample: a sample whose input fails the forward pass fails alone, its
batch-mates answered; a device error fails its whole pass, untried again."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from dlens.common.grid import Domain, parse_domain
from dlens.serve.batches import answer, is_device_error
from dlens.serve.samples import Sample

TINY = parse_domain("tiny")
OTHER = Domain("other", TINY.i0, TINY.i0 + 4, TINY.j0, TINY.j0 + 4)
BAD = 99  # the lead of the sample whose input the forward pass refuses


def sample(lead: int, domain: Domain = TINY) -> Sample:
    fields = np.zeros((1, *domain.shape), np.float32)
    time, no_predictors = np.datetime64("2025-03-04T00", "h"), np.zeros((0, *domain.shape), np.float32)
    return Sample("m", fields, ((0, 0),), 1, lead, time, domain, no_predictors)


def forward(calls: list, error: Exception) -> object:
    """A forward pass recording the leads of each pass: the field of a sample is its lead; `error` where the
    pass holds the BAD sample."""

    async def run(group: list[Sample]) -> np.ndarray:
        calls.append([s.lead for s in group])
        if any(s.lead == BAD for s in group):
            raise error
        return np.stack([np.full((1, *s.domain.shape), s.lead, np.float32) for s in group])

    return run


def test_a_sample_failing_on_its_input_fails_alone():
    calls: list = []
    error = ValueError("Expected more than 1 spatial element when training")
    batch = [sample(1), sample(BAD), sample(2), sample(3, OTHER)]
    outcomes = asyncio.run(answer(batch, forward(calls, error)))
    assert outcomes[1] is error
    assert [o[0, 0, 0] for i, o in enumerate(outcomes) if i != 1] == [1, 2, 3]
    assert outcomes[3].shape == (1, 4, 4)
    assert calls == [[1, BAD, 2], [1], [BAD], [2], [3]]  # one pass per domain, then the failed one's samples


def test_a_device_error_fails_its_pass_without_a_retry():
    calls: list = []
    error = torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    outcomes = asyncio.run(answer([sample(1), sample(BAD), sample(3, OTHER)], forward(calls, error)))
    assert outcomes[0] is error and outcomes[1] is error and outcomes[2][0, 0, 0] == 3
    assert calls == [[1, BAD], [3]]


@pytest.mark.parametrize(
    ("error", "device"),
    [
        (
            ValueError("Expected more than 1 spatial element when training, got input size [1, 96, 1, 1]"),
            False,
        ),
        (RuntimeError("Kernel size can't be greater than actual input size"), False),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), True),
        (torch.cuda.OutOfMemoryError("CUDA out of memory"), True),
        (MemoryError(), True),
    ],
)
def test_only_device_errors_count_against_the_replica(error: Exception, device: bool):
    assert is_device_error(error) is device
