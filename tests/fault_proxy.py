"""A TCP proxy on 127.0.0.1 that damages what a server answers: it cuts connections or flips one byte.

Each accepted connection draws its fate from a seeded generator: with ``cut_rate`` it is closed after a random
number of answer bytes, with ``flip_rate`` one answer byte (past the first ``skip`` bytes, so mostly in a body) is
inverted. What the client sends passes unchanged. Bounded: ``max_faults`` in all, then it only relays.
"""

from __future__ import annotations

import contextlib
import random
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class FaultProxy:
    upstream: tuple[str, int]
    cut_rate: float = 0.0
    flip_rate: float = 0.0
    seed: int = 7
    skip: int = 600
    max_faults: int = 200
    #: Seconds to wait before relaying each chunk of an answer (a slow link).
    throttle: float = 0.0
    cuts: int = 0
    flips: int = 0
    _rng: random.Random = field(init=False)
    _server: socket.socket = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def close(self) -> None:
        self._server.close()

    def _fate(self) -> tuple[int | None, int | None]:
        with self._lock:
            if self.cuts + self.flips >= self.max_faults:
                return None, None
            draw = self._rng.random()
            if draw < self.cut_rate:
                self.cuts += 1
                return self._rng.randint(self.skip, self.skip + 256 * 1024), None
            if draw < self.cut_rate + self.flip_rate:
                self.flips += 1
                return None, self._rng.randint(self.skip, self.skip + 64 * 1024)
            return None, None

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream, timeout=30)
            cut, flip = self._fate()
            threading.Thread(target=self._pipe, args=(client, server, None, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, cut, flip, self.throttle), daemon=True).start()

    @staticmethod
    def _pipe(
        source: socket.socket, dest: socket.socket, cut: int | None, flip: int | None, throttle: float = 0.0
    ) -> None:
        seen = 0
        try:
            while data := source.recv(65536):
                if throttle:
                    time.sleep(throttle)
                if flip is not None and seen <= flip < seen + len(data):
                    at = flip - seen
                    data = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
                if cut is not None and seen + len(data) >= cut:
                    dest.sendall(data[: cut - seen])
                    break
                dest.sendall(data)
                seen += len(data)
        except OSError:
            pass
        finally:
            for sock in (source, dest):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
