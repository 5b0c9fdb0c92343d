"""A TCP forwarder to put in front of a test server (the session's moto S3): stopping it takes the server
off the network (connections refused, open ones closed) without losing the server's state, stalling it
makes the server hang (connections accepted, never answered), and starting it again brings the server back
on the same port. `stop_on` stops it at a chosen point of a conversation (the second write of some key)."""

from __future__ import annotations

import contextlib
import socket
import threading

from dlens.testing.plugin import free_port


class Forwarder:
    """Forwards 127.0.0.1:`port` to `target`; `stop()` closes the listener and every open connection,
    `stall()` closes the open connections and holds new ones unanswered, `start()` forwards again on the
    same port."""

    def __init__(self, target: tuple[str, int], port: int | None = None):
        self.target, self.port = target, port or free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stalled = False
        self._trigger: tuple[bytes, int] | None = None
        self.tripped = threading.Event()  # set when `stop_on` stopped it

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._listen(stalled=False)

    def stall(self) -> None:
        self._listen(stalled=True)

    def stop_on(self, pattern: bytes, count: int = 1) -> None:
        """Stop by itself when the `count`-th chunk holding `pattern` arrives, which is not passed on."""
        with self._lock:
            self._trigger = (pattern, count)
        self.tripped.clear()

    def stop(self) -> None:
        if self._listener is not None:
            _close(self._listener)
            self._listener = None
        with self._lock:
            for connection in self._open:
                _close(connection)
            self._open.clear()

    def _listen(self, stalled: bool) -> None:
        self.stop()
        self._stalled = stalled
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was closed: stopped
                return
            if self._stalled:
                with self._lock:
                    self._open.add(client)
                continue
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):  # either side closed
            while data := source.recv(65536):
                if self._trips(data):
                    self.stop()
                    self.tripped.set()
                    break
                sink.sendall(data)
        with self._lock:
            self._open.difference_update((source, sink))
        _close(source)
        _close(sink)

    def _trips(self, data: bytes) -> bool:
        with self._lock:
            if self._trigger is None or self._trigger[0] not in data:
                return False
            pattern, count = self._trigger
            self._trigger = (pattern, count - 1) if count > 1 else None
            return count == 1


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
