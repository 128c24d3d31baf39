"""The ArtifactStore contract, checked on both backends, then what only S3 does.

The S3 backend talks HTTP to the moto server of ``conftest.py``; nothing of boto3 is mocked.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from dbt_ferry.core.errors import StoreError, StoreNotFoundError, StorePreconditionError
from dbt_ferry.core.store import ArtifactStore
from dbt_ferry.storage.local import LocalStore
from dbt_ferry.storage.s3 import S3Store
from tests.conftest import free_port

BUCKET = "ferry-test-bucket"
PREFIX = "some/prefix"
MB = 1024 * 1024


@pytest.fixture(
    params=[
        pytest.param("local", id="local"),
        pytest.param("s3", id="s3", marks=pytest.mark.integration),
    ]
)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    request.getfixturevalue("bucket")
    return S3Store(BUCKET, PREFIX)


@pytest.fixture
def s3_store(bucket: str) -> S3Store:
    return S3Store(bucket, PREFIX)


def _counter() -> tuple[list[int], Callable[[int], None]]:
    seen: list[int] = []
    return seen, seen.append


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MB):
            digest.update(chunk)
    return digest.hexdigest()


# --- the contract, on both backends -------------------------------------------------------------


def test_store_satisfies_protocol(store: ArtifactStore) -> None:
    assert isinstance(store, ArtifactStore)


def test_write_then_read_round_trip(store: ArtifactStore) -> None:
    data = bytes(range(256)) * 10 + b"\x00end"
    store.write_bytes("a/b/c.bin", data)
    assert store.read_bytes("a/b/c.bin") == data
    assert store.size("a/b/c.bin") == len(data)


def test_write_overwrites_by_default(store: ArtifactStore) -> None:
    store.write_bytes("k.txt", b"first")
    store.write_bytes("k.txt", b"second, longer")
    assert store.read_bytes("k.txt") == b"second, longer"


def test_write_empty_bytes(store: ArtifactStore) -> None:
    store.write_bytes("empty", b"")
    assert store.read_bytes("empty") == b""
    assert store.size("empty") == 0


def test_write_if_absent_creates_when_missing(store: ArtifactStore) -> None:
    store.write_bytes("once.json", b"{}", if_absent=True)
    assert store.read_bytes("once.json") == b"{}"


def test_write_if_absent_refuses_existing_and_keeps_original(store: ArtifactStore) -> None:
    store.write_bytes("once.json", b"original")
    with pytest.raises(StorePreconditionError):
        store.write_bytes("once.json", b"intruder", if_absent=True)
    assert store.read_bytes("once.json") == b"original"


def test_read_missing_key_raises_not_found(store: ArtifactStore) -> None:
    store.write_bytes("present", b"x")  # the store exists, only the key is missing
    with pytest.raises(StoreNotFoundError):
        store.read_bytes("absent/key.json")


def test_read_in_empty_store_raises_not_found(store: ArtifactStore) -> None:
    with pytest.raises(StoreNotFoundError):
        store.read_bytes("nothing/here")


def test_download_missing_key_raises_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    store.write_bytes("present", b"x")
    with pytest.raises(StoreNotFoundError):
        store.download("absent.bin", tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()


def test_key_that_is_only_a_prefix_of_others_is_not_found(store: ArtifactStore, tmp_path: Path) -> None:
    # "dir" is a folder on disk and a mere key prefix on S3: as a key, it does not exist on either.
    store.write_bytes("dir/file", b"x")
    assert store.size("dir") is None
    with pytest.raises(StoreNotFoundError):
        store.read_bytes("dir")
    with pytest.raises(StoreNotFoundError):
        store.download("dir", tmp_path / "out.bin")


def test_upload_download_round_trip_with_progress(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    payload = os.urandom(3 * MB + 12345)  # several local chunks
    source.write_bytes(payload)

    up, on_up = _counter()
    store.upload("artifacts/source.bin", source, progress=on_up)
    assert sum(up) == len(payload)
    assert store.size("artifacts/source.bin") == len(payload)

    dest = tmp_path / "dest.bin"
    down, on_down = _counter()
    store.download("artifacts/source.bin", dest, progress=on_down)
    assert sum(down) == len(payload)
    assert dest.read_bytes() == payload


def test_upload_without_progress(store: ArtifactStore, tmp_path: Path) -> None:
    source = tmp_path / "small.txt"
    source.write_text("hello")
    store.upload("small.txt", source)
    assert store.read_bytes("small.txt") == b"hello"


def test_size_of_missing_key_is_none(store: ArtifactStore) -> None:
    assert store.size("missing.bin") is None
    store.write_bytes("dir/file", b"abc")
    assert store.size("dir/missing") is None
    assert store.size("dir/file") == 3


def test_list_keys_recursive_sorted_and_relative(store: ArtifactStore) -> None:
    keys = ["r/z.txt", "r/a/b/c.txt", "r/a/a.txt", "r/m/n.txt", "other/x.txt", "rr/y.txt"]
    for key in keys:
        store.write_bytes(key, key.encode())

    listed = store.list_keys("r/")
    assert listed == ["r/a/a.txt", "r/a/b/c.txt", "r/m/n.txt", "r/z.txt"]
    assert store.list_keys("r/a/") == ["r/a/a.txt", "r/a/b/c.txt"]
    assert store.list_keys("") == sorted(keys)
    # Listed keys are usable keys.
    for key in store.list_keys(""):
        assert store.read_bytes(key) == key.encode()


def test_list_keys_of_missing_prefix_is_empty(store: ArtifactStore) -> None:
    assert store.list_keys("nothing/") == []
    store.write_bytes("a/b", b"1")
    assert store.list_keys("nothing/") == []


def test_delete_removes_and_ignores_missing(store: ArtifactStore) -> None:
    store.write_bytes("d/one", b"1")
    store.write_bytes("d/two", b"2")
    store.write_bytes("keep/three", b"3")

    store.delete(["d/one", "d/never-existed", "nowhere/at/all"])
    assert store.size("d/one") is None
    assert store.read_bytes("d/two") == b"2"
    assert store.list_keys("") == ["d/two", "keep/three"]

    store.delete(["d/two"])
    store.delete(["d/two"])  # again: nothing to do, no error
    store.delete([])
    assert store.list_keys("") == ["keep/three"]


# --- local store only ---------------------------------------------------------------------------


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or p.name.startswith("."))]


def test_local_store_leaves_no_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(2 * MB + 7))

    store.write_bytes("a/b.json", b"{}")
    store.write_bytes("a/b.json", b"{ }")
    store.write_bytes("a/c.json", b"[]", if_absent=True)
    with pytest.raises(StorePreconditionError):
        store.write_bytes("a/c.json", b"again", if_absent=True)
    store.upload("blobs/src.bin", source)
    store.upload("blobs/src.bin", source)

    assert _leftovers(store.root) == []
    files = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert files == ["a/b.json", "a/c.json", "blobs/src.bin"]


def test_local_store_failed_upload_leaves_no_temp_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(FileNotFoundError):
        store.upload("blobs/x.bin", tmp_path / "does-not-exist.bin")
    assert _leftovers(store.root) == []
    assert store.list_keys("") == []


def test_local_store_list_keys_hides_unfinished_writes(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("r/done.json", b"1")
    (store.root / "r" / ".done.json.abc123.tmp").write_bytes(b"partial")
    assert store.list_keys("r/") == ["r/done.json"]


@pytest.mark.parametrize("key", ["../escape.txt", "a/../../escape.txt", "a/./b", "..", "", "/"])
def test_local_store_refuses_bad_keys(tmp_path: Path, key: str) -> None:
    store = LocalStore(tmp_path / "store")
    with pytest.raises(StoreError, match="invalid store key"):
        store.write_bytes(key, b"x")
    with pytest.raises(StoreError, match="invalid store key"):
        store.read_bytes(key)
    assert not (tmp_path / "escape.txt").exists()


def test_local_store_url_is_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = LocalStore(Path("rel/store"))
    assert store.url == str(tmp_path / "rel" / "store")


def test_local_store_delete_prunes_empty_directories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "store")
    store.write_bytes("x/y/z/file", b"1")
    store.write_bytes("x/keep", b"2")
    store.delete(["x/y/z/file"])
    assert not (store.root / "x" / "y").exists()
    assert (store.root / "x" / "keep").is_file()
    assert store.root.is_dir()


# --- S3 store only ------------------------------------------------------------------------------


@pytest.mark.integration
def test_s3_keys_live_under_the_prefix_and_are_listed_without_it(s3_store: S3Store, bucket: str) -> None:
    client = boto3.client("s3")
    client.put_object(Bucket=bucket, Key="outside/not-mine.txt", Body=b"no")
    client.put_object(Bucket=bucket, Key="some/prefixed/not-mine.txt", Body=b"no")
    s3_store.write_bytes("releases/1.0.0/release.json", b"{}")
    s3_store.write_bytes("channels/local.json", b"{}")

    raw = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/")["Contents"])
    assert raw == [f"{PREFIX}/channels/local.json", f"{PREFIX}/releases/1.0.0/release.json"]

    listed = s3_store.list_keys("")
    assert listed == ["channels/local.json", "releases/1.0.0/release.json"]
    assert all(not k.startswith(("some", "/")) for k in listed)
    assert s3_store.list_keys("releases/") == ["releases/1.0.0/release.json"]
    assert s3_store.url == f"s3://{bucket}/{PREFIX}"


@pytest.mark.integration
def test_s3_store_without_prefix(bucket: str) -> None:
    store = S3Store(bucket, "")
    store.write_bytes("top/level.txt", b"t")
    assert store.list_keys("") == ["top/level.txt"]
    assert boto3.client("s3").get_object(Bucket=bucket, Key="top/level.txt")["Body"].read() == b"t"
    assert store.url == f"s3://{bucket}"


@pytest.mark.integration
@pytest.mark.slow  # about 1000 round trips to the emulator
def test_s3_delete_more_than_one_batch(s3_store: S3Store) -> None:
    client = s3_store.client
    keys = [f"many/{i:05d}" for i in range(1005)]
    for key in keys:
        client.put_object(Bucket=s3_store.bucket, Key=f"{PREFIX}/{key}", Body=b"")
    assert len(s3_store.list_keys("many/")) == 1005  # also pages past 1000
    s3_store.delete([*keys, "many/missing"])
    assert s3_store.list_keys("many/") == []


@pytest.mark.integration
@pytest.mark.slow
def test_s3_large_multipart_round_trip(s3_store: S3Store, tmp_path: Path) -> None:
    size = 200 * MB
    source = tmp_path / "big.bin"
    dest = tmp_path / "big.out"
    digest = hashlib.sha256()
    try:
        with source.open("wb") as handle:
            remaining = size
            while remaining:
                chunk = os.urandom(min(16 * MB, remaining))
                digest.update(chunk)
                handle.write(chunk)
                remaining -= len(chunk)

        up, on_up = _counter()
        s3_store.upload("big/artifact.bin", source, progress=on_up)
        assert sum(up) == size
        assert s3_store.size("big/artifact.bin") == size
        head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=f"{PREFIX}/big/artifact.bin")
        assert "-" in head["ETag"], "a 200 MB upload must be multipart"

        down, on_down = _counter()
        s3_store.download("big/artifact.bin", dest, progress=on_down)
        assert sum(down) == size
        assert dest.stat().st_size == size
        assert _sha256(dest) == digest.hexdigest()
    finally:
        source.unlink(missing_ok=True)
        dest.unlink(missing_ok=True)


OPERATIONS: dict[str, Callable[[S3Store, Path], object]] = {
    "read_bytes": lambda s, _: s.read_bytes("a/key"),
    "write_bytes": lambda s, _: s.write_bytes("a/key", b"1"),
    "write_bytes_if_absent": lambda s, _: s.write_bytes("a/key", b"1", if_absent=True),
    "list_keys": lambda s, _: s.list_keys(""),
    "delete": lambda s, _: s.delete(["a/key"]),
    "upload": lambda s, tmp: s.upload("a/key", tmp / "source.txt"),
    "download": lambda s, tmp: s.download("a/key", tmp / "dest.txt"),
    "size": lambda s, _: s.size("a/key"),
}


@pytest.mark.integration
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_s3_missing_bucket_is_a_store_error(aws: str, tmp_path: Path, operation: str) -> None:
    (tmp_path / "source.txt").write_text("payload")
    store = S3Store("no-such-bucket-here", PREFIX)
    with pytest.raises(StoreError, match="bucket no-such-bucket-here does not exist") as caught:
        outcome = OPERATIONS[operation](store, tmp_path)
        pytest.fail(f"{operation} on a missing bucket returned {outcome!r} instead of raising")
    assert not isinstance(caught.value, StoreNotFoundError)
    assert caught.value.hint is not None and "bucket" in caught.value.hint


@pytest.mark.integration
def test_s3_missing_credentials_is_a_store_error(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)

    store = S3Store(BUCKET, PREFIX)
    started = time.monotonic()
    with pytest.raises(StoreError, match="credentials") as caught:
        store.read_bytes("releases/1.0.0/release.json")
    assert time.monotonic() - started < 30
    assert caught.value.hint is not None
    assert "AWS_ACCESS_KEY_ID" in caught.value.hint


@pytest.mark.integration
@pytest.mark.parametrize("operation", ["read_bytes", "upload", "size"])
def test_s3_unreachable_endpoint_is_a_store_error(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    (tmp_path / "source.txt").write_text("payload")
    port = free_port()  # bound then released: nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    store = S3Store(BUCKET, PREFIX)
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach the S3 endpoint") as caught:
        OPERATIONS[operation](store, tmp_path)
    elapsed = time.monotonic() - started
    assert elapsed < 30, f"gave up only after {elapsed:.1f} s"
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert not isinstance(caught.value, StoreNotFoundError)


def test_open_read_streams_the_bytes(store: object, tmp_path: Path) -> None:
    from dbt_ferry.core.errors import StoreNotFoundError

    data = os.urandom(3 * 1024 * 1024 + 17)
    store.write_bytes("stream/blob.bin", data)  # type: ignore[attr-defined]
    with store.open_read("stream/blob.bin") as stream:  # type: ignore[attr-defined]
        chunks = []
        while chunk := stream.read(1024 * 1024):
            chunks.append(chunk)
    assert b"".join(chunks) == data
    with pytest.raises(StoreNotFoundError):
        store.open_read("stream/absent.bin")  # type: ignore[attr-defined]
