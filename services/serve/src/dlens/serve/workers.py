"""Worker processes that read untrusted request bodies within an address-space limit (RLIMIT_AS): a body
that decompresses or allocates beyond it fails in its worker (MemoryError, or the worker dies), never in
the replica.

A worker is a fresh interpreter (not a fork of the replica, which runs threads): it runs the pool's `setup`
(imports, a first call), then limits its address space to what it holds by then plus the limit, and runs
one call at a time. A worker that died is started again, as is one that has run TASKS_PER_WORKER calls.
Calls and answers are pickled with their arrays and bytes out of band (sent as they are, not copied into
the pickle)."""

from __future__ import annotations

import os
import pickle
import queue
import resource
import signal
import subprocess
import sys
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
#: Calls a worker runs before it is started again (what a library leaks stays bounded).
TASKS_PER_WORKER = 100
#: One BLAS / OpenMP thread in a worker: it reads one body at a time, and threads reserve address space.
_ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
_MAIN = "import sys, dlens.serve.workers as w; w.serve(int(sys.argv[1]), int(sys.argv[2]))"


class WorkerDied(Exception):
    """The worker process ended during a call: killed (by the kernel's OOM killer, say) or crashed."""


class WorkerPool:
    """`workers` processes, each running one call at a time within `limit` bytes of address space beyond
    what it holds once it has run `setup` (pickled: a module's function)."""

    def __init__(self, workers: int, limit: int, setup: Callable[[], object]):
        self.limit = limit
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for _ in range(workers):
            self._idle.put(_Worker(limit, setup))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker (pickled; bytes arrive as a read-only memoryview): its value, or the
        exception it raised (MemoryError beyond the limit); WorkerDied when the worker ended. Waits for an
        idle worker."""
        args = tuple(pickle.PickleBuffer(a) if isinstance(a, bytes) else a for a in args)
        worker = self._idle.get()
        try:
            return worker.call(fn, args)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        """End the idle workers (those in a call end with the replica, their connection closed)."""
        while not self._idle.empty():
            self._idle.get().close()


class _Worker:
    """A worker process, started again after it died or ran TASKS_PER_WORKER calls."""

    def __init__(self, limit: int, setup: Callable[[], object]):
        self.limit, self.setup = limit, setup
        self._start()

    def _start(self) -> None:
        self.calls = 0
        self.conn, child = Pipe()
        env = {**os.environ, **_ONE_THREAD, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        fd = child.fileno()
        self.process = subprocess.Popen(
            [sys.executable, "-c", _MAIN, str(fd), str(self.limit)],
            pass_fds=(fd,),
            env=env,
            stdin=subprocess.DEVNULL,
        )
        child.close()
        _send(self.conn, self.setup)

    def call(self, fn: Callable[..., T], args: tuple) -> T:
        if self.process.poll() is not None:  # died between calls: not this call's doing
            self._restart()
        self.calls += 1
        try:
            _send(self.conn, (fn, args))
            ok, value = _receive(self.conn)
        except (EOFError, OSError):
            self.close()
            status = self.process.returncode
            self._start()
            raise WorkerDied(_ending(status)) from None
        if self.calls >= TASKS_PER_WORKER:
            self._restart()
        if ok:
            return value
        raise value

    def _restart(self) -> None:
        self.close()
        self._start()

    def close(self) -> None:
        self.conn.close()
        self.process.kill()  # no-op for one that has ended: its status stays
        self.process.wait()


def _send(conn: Connection, message: Any) -> None:
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    conn.send([len(head)] + [buffer.raw().nbytes for buffer in buffers])
    for part in (head, *(buffer.raw() for buffer in buffers)):
        conn.send_bytes(part)


def _receive(conn: Connection) -> Any:
    parts = [bytearray(size) for size in conn.recv()]
    for part in parts:
        conn.recv_bytes_into(part)
    return pickle.loads(parts[0], buffers=parts[1:])


def _ending(status: int) -> str:
    return f"killed by {signal.Signals(-status).name}" if status < 0 else f"exited with status {status}"


def serve(fd: int, limit: int) -> None:
    """A worker's loop on the connection `fd`: run the setup it reads first, limit the address space, then
    answer the calls it reads until it closes."""
    conn = Connection(fd)
    _receive(conn)()
    statm = Path("/proc/self/statm")
    if statm.exists():  # Linux; elsewhere (macOS) RLIMIT_AS is not enforced: bodies are read unlimited
        held = os.sysconf("SC_PAGE_SIZE") * int(statm.read_text().split()[0])
        # the hard limit too: no way back
        resource.setrlimit(resource.RLIMIT_AS, (held + limit, held + limit))
    while True:
        try:
            fn, args = _receive(conn)
        except EOFError:
            return
        try:
            reply = (True, fn(*args))
        except Exception as exc:  # MemoryError included: the caller sees what the call raised
            reply = (False, exc)
        _send(conn, reply)
