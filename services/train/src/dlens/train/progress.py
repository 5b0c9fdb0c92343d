"""Epoch progress on the console: rank 0 puts each epoch's metrics on a Ray queue, the driver shows them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from queue import Empty

from ray.util.queue import Queue
from tqdm import tqdm

from dlens.common.config import get_settings

log = logging.getLogger(__name__)


def epoch_queue() -> Queue:
    """The queue a run's rank-0 worker reports its epochs to (an actor that holds no CPU)."""
    return Queue(actor_options={"num_cpus": 0})


def describe(metrics: dict, epochs: int) -> str:
    """One line for an epoch: losses in normalised units, and validation RMSE as a ratio to the median's."""
    return (
        f"epoch {metrics['epoch']}/{epochs}: train loss {metrics['train_loss']:.4f}, "
        f"val loss {metrics['val_loss']:.4f} (median {metrics['val_median_loss']:.4f}), "
        f"val RMSE / median {metrics['val_ratio']:.3f}"
    )


@contextmanager
def epoch_progress(
    queue: Queue, epochs: int, name: str, on_epoch: Callable[[dict], None] | None = None
) -> Iterator[None]:
    """While the block runs, show the epochs put on `queue` as a progress bar and one log line each, and
    hand each epoch's metrics to `on_epoch` (the experiment tracker)."""
    stop = threading.Event()

    def show() -> None:
        bar = tqdm(total=epochs, desc=f"train {name}", unit="epoch", disable=not get_settings().progress)
        with bar:
            while True:
                try:
                    metrics = queue.get(timeout=0.5)
                except Empty:
                    if stop.is_set():  # the run has ended and every epoch put before is shown
                        return
                    continue
                bar.n = metrics["epoch"]
                bar.set_postfix(val_ratio=f"{metrics['val_ratio']:.3f}", refresh=True)
                log.info(describe(metrics, epochs))
                if on_epoch is not None:
                    on_epoch(metrics)

    thread = threading.Thread(target=show, name="epoch-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)
