"""A TCP proxy in front of Redis that records what a client sends: its commands, and how many
round trips it makes (a round trip starts whenever the client writes after Redis answered)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress


class RecordingProxy:
    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.commands: list[list[bytes]] = []
        self.round_trips = 0
        self.upstream_addresses: list[tuple[str, int]] = []
        self._lock = threading.Lock()
        self._client_spoke_last = False
        self._buffer = b""
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def reset(self) -> None:
        with self._lock:
            self.commands.clear()
            self.round_trips = 0

    def command_names(self) -> list[str]:
        with self._lock:
            return [command[0].decode().upper() for command in self.commands]

    def drop_connections(self) -> None:
        """Cut every connection made so far, as a server restart would; new ones still work."""
        for sock in self._sockets[1:]:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        for sock in self._sockets:
            with suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            self.upstream_addresses.append(server.getsockname())
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, from_client: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for sock in (source, target):
                    with suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                return
            with self._lock:
                if from_client:
                    if not self._client_spoke_last:
                        self.round_trips += 1
                    self._client_spoke_last = True
                    self._buffer += data
                    self._parse()
                else:
                    self._client_spoke_last = False
            try:
                target.sendall(data)
            except OSError:
                return

    def _parse(self) -> None:
        """Take every complete RESP command (an array of bulk strings) out of the buffer."""
        while True:
            command, rest = _parse_command(self._buffer)
            if command is None:
                return
            self.commands.append(command)
            self._buffer = rest


def _parse_command(buffer: bytes) -> tuple[list[bytes] | None, bytes]:
    if not buffer.startswith(b"*"):
        return None, buffer
    end = buffer.find(b"\r\n")
    if end < 0:
        return None, buffer
    count = int(buffer[1:end])
    position = end + 2
    parts = []
    for _ in range(count):
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None, buffer
        length = int(buffer[position + 1 : end])
        start = end + 2
        if len(buffer) < start + length + 2:
            return None, buffer
        parts.append(buffer[start : start + length])
        position = start + length + 2
    return parts, buffer[position:]


@contextmanager
def recording_proxy(host: str, port: int) -> Iterator[RecordingProxy]:
    proxy = RecordingProxy((host, port))
    try:
        yield proxy
    finally:
        proxy.close()
