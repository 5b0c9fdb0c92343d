"""The median over a few stacked fields by a sorting network: element-wise minima and maxima over bands of
grid cells, several times faster than a partition along the stacked axis (which visits one strided column
of 11 values at a time) and exactly the same values."""

from __future__ import annotations

from functools import cache

import numpy as np

#: Grid cells worked on at once: that band of every field stays in the processor's cache.
CELL_BAND = 1 << 15


@cache
def _merge_sort_network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort of `n` values as comparators (low, high): after each one, `low`
    holds the smaller value. Built for the next power of two, where the missing values count as +inf,
    so every comparator reaching past `n` leaves its values as they are and is dropped."""
    size = 1 << max(n - 1, 0).bit_length()
    out, p = [], 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        out.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return tuple(out)


@cache
def _median_network(n: int) -> tuple[tuple[int, int], ...]:
    """The comparators of the sorting network the middle value (or the two middle ones) depends on."""
    needed, kept = {(n - 1) // 2, n // 2}, []
    for low, high in reversed(_merge_sort_network(n)):
        if low in needed or high in needed:
            kept.append((low, high))
            needed |= {low, high}
    return tuple(reversed(kept))


def median_of_stack(fields: np.ndarray) -> np.ndarray:
    """Median over the first axis of a stack without NaN (the mean of the two middle values for an even
    count), in the stack's dtype."""
    n = len(fields)
    network = _median_network(n)
    flat = fields.reshape(n, -1)
    out = np.empty(flat.shape[1], fields.dtype)
    for start in range(0, flat.shape[1], CELL_BAND):
        band = slice(start, start + CELL_BAND)
        rows = list(flat[:, band].copy())
        spare = np.empty_like(rows[0])
        for low, high in network:
            np.minimum(rows[low], rows[high], out=spare)
            np.maximum(rows[low], rows[high], out=rows[high])
            rows[low], spare = spare, rows[low]
        if n % 2:
            out[band] = rows[n // 2]
        else:
            np.add(rows[n // 2 - 1], rows[n // 2], out=spare)
            np.multiply(spare, fields.dtype.type(0.5), out=out[band])
    return out.reshape(fields.shape[1:])
