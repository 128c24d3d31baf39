"""S3 reads through a proxy that cuts connections mid-answer and flips bytes (127.0.0.1, bounded, seeded).

A read resumes where its body broke off, so listings, small reads and downloads all succeed under a 30 % cut
rate; a damaged body is caught by S3's checksum or the sha256 dbt-ferry wrote with the object, and read again —
a read returns the object's bytes or fails, never other bytes.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from dbt_ferry.core.errors import StoreError
from dbt_ferry.storage.s3 import S3Store
from tests.fault_proxy import FaultProxy

pytestmark = pytest.mark.integration

SMALL = {f"releases/1.0.{n}/release.json": os.urandom(1500 + 97 * n) for n in range(20)}
BIG = os.urandom(3 * 1024 * 1024 + 17)


@pytest.fixture
def written(bucket: str, tmp_path: Path) -> str:
    """The objects, written straight to the emulator (no proxy)."""
    store = S3Store(bucket, "shop")
    for key, data in SMALL.items():
        store.write_bytes(key, data)
    big = tmp_path / "big.bin"
    big.write_bytes(BIG)
    store.upload("releases/1.0.0/abc/env.tar.zst", big)
    return bucket


def _proxy(aws: str, monkeypatch: pytest.MonkeyPatch, **faults: float) -> Iterator[FaultProxy]:
    target = urlparse(aws)
    proxy = FaultProxy((target.hostname or "127.0.0.1", target.port or 80), **faults)  # type: ignore[arg-type]
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture
def cutting(aws: str, written: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    yield from _proxy(aws, monkeypatch, cut_rate=0.3)


@pytest.fixture
def flipping(aws: str, written: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    yield from _proxy(aws, monkeypatch, flip_rate=0.35, cut_rate=0.15, seed=11)


def test_listings_and_reads_survive_connections_cut_mid_answer(
    cutting: FaultProxy, written: str, tmp_path: Path
) -> None:
    for round_ in range(10):
        store = S3Store(written, "shop")  # a fresh client each round: new connections, new faults
        assert store.list_keys("releases/") == sorted([*SMALL, "releases/1.0.0/abc/env.tar.zst"])
        assert {key: store.read_bytes(key) for key in SMALL} == SMALL
        dest = tmp_path / f"big-{round_}"
        store.download("releases/1.0.0/abc/env.tar.zst", dest)
        assert dest.read_bytes() == BIG
        with store.open_read("releases/1.0.0/abc/env.tar.zst") as stream:
            assert hashlib.sha256(stream.read()).digest() == hashlib.sha256(BIG).digest()
    assert cutting.cuts >= 10


def test_a_damaged_body_is_never_returned(flipping: FaultProxy, written: str, tmp_path: Path) -> None:
    outcomes = {"right": 0, "error": 0}
    for round_ in range(12):
        store = S3Store(written, "shop")
        dest = tmp_path / f"big-{round_}"
        try:
            store.download("releases/1.0.0/abc/env.tar.zst", dest)
            small = store.read_bytes("releases/1.0.7/release.json")
        except StoreError:
            outcomes["error"] += 1
            continue
        assert dest.read_bytes() == BIG  # never other bytes
        assert small == SMALL["releases/1.0.7/release.json"]
        outcomes["right"] += 1
    assert flipping.flips >= 5
    assert outcomes["right"] >= 8, outcomes  # damaged transfers are read again


@pytest.fixture
def refusing(aws: str, written: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    yield from _proxy(aws, monkeypatch, error_rate=0.25, seed=5)


def test_500_503_and_slowdown_answers_are_retried(refusing: FaultProxy, written: str, tmp_path: Path) -> None:
    for round_ in range(3):
        store = S3Store(written, "shop")
        assert {key: store.read_bytes(key) for key in SMALL} == SMALL
        store.write_bytes(f"runs/prod/{round_}/ferry.json", b"{}")  # writes are retried too
        dest = tmp_path / f"big-{round_}"
        store.download("releases/1.0.0/abc/env.tar.zst", dest)
        assert dest.read_bytes() == BIG
    assert refusing.errors >= 10


def test_a_stalled_answer_is_resumed_and_a_dead_endpoint_named(
    aws: str, written: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBT_FERRY_S3_READ_TIMEOUT", "0.5")
    for proxy in _proxy(aws, monkeypatch, stall_rate=0.4, stall=1.5, seed=3):
        for round_ in range(3):
            store = S3Store(written, "shop")
            dest = tmp_path / f"big-{round_}"
            store.download("releases/1.0.0/abc/env.tar.zst", dest)
            assert dest.read_bytes() == BIG
            assert store.read_bytes("releases/1.0.3/release.json") == SMALL["releases/1.0.3/release.json"]
        assert proxy.stalls >= 2
    every = {"stall_rate": 1.0, "stall": 30, "skip": 0, "stall_span": 0, "max_faults": 1000}
    for proxy in _proxy(aws, monkeypatch, **every):  # no answer ever comes
        with pytest.raises(StoreError, match=f"the S3 endpoint {proxy.url} did not answer in time") as caught:
            S3Store(written, "shop").read_bytes("releases/1.0.3/release.json")
        assert "DBT_FERRY_S3_READ_TIMEOUT" in str(caught.value) and "\n" not in str(caught.value)


def test_a_read_timeout_that_is_not_a_number_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from dbt_ferry.core.errors import ConfigError
    from dbt_ferry.storage.s3 import read_timeout

    assert read_timeout({}) == 60
    assert read_timeout({"DBT_FERRY_S3_READ_TIMEOUT": "2.5"}) == 2.5
    for bad in ("soon", "0", "-1"):
        with pytest.raises(ConfigError, match="is not a number of seconds"):
            read_timeout({"DBT_FERRY_S3_READ_TIMEOUT": bad})
