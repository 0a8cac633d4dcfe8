"""A TCP proxy the tests can cut: the broker seems down (or hangs) while the real one keeps
serving every other test."""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.monitor.processes import free_port

#: How often blocked socket calls wake up to see whether the proxy stopped, in seconds.
POLL_INTERVAL = 0.05


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``stop()`` refuses connections,
    ``start(hang=True)`` accepts them and never answers.

    Parameters:
      target(tuple[str, int]): Where connections go.
    """

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self, *, hang: bool = False) -> None:
        self._stopping.clear()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        listener.settimeout(POLL_INTERVAL)
        self._track(listener)
        self._spawn(self._accept, listener, hang)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
            threads, self._threads = self._threads, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in threads:
            thread.join(timeout=5)

    def _accept(self, listener: socket.socket, hang: bool) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self._track(client)
            if hang:
                continue
            upstream = socket.create_connection(self.target, timeout=5)
            self._track(upstream)
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(POLL_INTERVAL)
        while not self._stopping.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            try:
                sink.sendall(data)
            except OSError:
                return

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        with self._lock:
            self._threads.append(thread)
        thread.start()
