"""A TCP proxy on 127.0.0.1 that damages what a server answers: it cuts, flips, refuses or stalls.

Each accepted connection draws its fate from a seeded generator: with ``cut_rate`` it is closed after a random
number of answer bytes; with ``flip_rate`` one answer byte (past the first ``skip`` bytes, so mostly in a body) is
inverted; with ``error_rate`` the request is answered by the proxy itself with an S3 error (500 InternalError,
503 SlowDown, 503 ServiceUnavailable) without reaching the server; with ``stall_rate`` the answer stops for
``stall`` seconds after a random number of bytes (a stalled link), then goes on. What the client sends passes
unchanged. Bounded: ``max_faults`` in all, then it only relays.
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
    error_rate: float = 0.0
    stall_rate: float = 0.0
    #: How long a stalled answer stops (seconds), and within how many bytes after ``skip`` it stops.
    stall: float = 2.0
    stall_span: int = 4096
    #: Seconds to wait before relaying each chunk of an answer (a slow link).
    throttle: float = 0.0
    cuts: int = 0
    flips: int = 0
    errors: int = 0
    stalls: int = 0
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

    @property
    def faults(self) -> int:
        return self.cuts + self.flips + self.errors + self.stalls

    def _fate(self) -> tuple[str | None, int]:
        """What happens to the next answer, and at which byte of it."""
        with self._lock:
            if self.faults >= self.max_faults:
                return None, 0
            draw = self._rng.random()
            for kind, rate, span in (
                ("cut", self.cut_rate, 256 * 1024),
                ("flip", self.flip_rate, 64 * 1024),
                ("error", self.error_rate, 0),
                ("stall", self.stall_rate, self.stall_span),
            ):
                if draw < rate:
                    setattr(self, f"{kind}s", getattr(self, f"{kind}s") + 1)
                    return kind, self._rng.randint(self.skip, self.skip + span)
                draw -= rate
            return None, 0

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            kind, at = self._fate()
            if kind == "error":
                threading.Thread(target=self._refuse, args=(client,), daemon=True).start()
                continue
            server = socket.create_connection(self.upstream, timeout=30)
            answer = (at if kind == "cut" else None, at if kind == "flip" else None, self.throttle,
                      at if kind == "stall" else None, self.stall)  # fmt: skip
            threading.Thread(target=self._pipe, args=(client, server, None, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, *answer), daemon=True).start()

    def _refuse(self, client: socket.socket) -> None:
        """Read the request (head and body), answer it with an S3 error, close."""
        with self._lock:
            status, code = self._rng.choice([(500, "InternalError"), (503, "SlowDown"), (503, "ServiceUnavailable")])
        try:
            client.settimeout(10)
            request = b""
            while b"\r\n\r\n" not in request and (chunk := client.recv(65536)):
                request += chunk
            head, _, body = request.partition(b"\r\n\r\n")
            length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
            while len(body) < length and (chunk := client.recv(65536)):
                body += chunk
            xml = f"<Error><Code>{code}</Code><Message>injected by the fault proxy</Message></Error>".encode()
            client.sendall(
                f"HTTP/1.1 {status} {code}\r\nContent-Type: application/xml\r\nContent-Length: {len(xml)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + xml
            )
        except OSError:
            pass
        finally:
            client.close()

    @staticmethod
    def _pipe(
        source: socket.socket,
        dest: socket.socket,
        cut: int | None,
        flip: int | None,
        throttle: float = 0.0,
        stall_at: int | None = None,
        stall: float = 0.0,
    ) -> None:
        seen = 0
        try:
            while data := source.recv(65536):
                if throttle:
                    time.sleep(throttle)
                if stall_at is not None and seen + len(data) >= stall_at:
                    dest.sendall(data[: stall_at - seen])
                    time.sleep(stall)
                    data, seen, stall_at = data[stall_at - seen :], stall_at, None
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
