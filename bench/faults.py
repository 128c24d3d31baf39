"""Fault trials for RELIABILITY.md: reads of an S3 store through a fault proxy, tampered bytes in releases, and
generated hostile archives through both writers.

Everything runs on 127.0.0.1 (a moto server, the seeded proxy of ``tests/fault_proxy.py``), bounded in count. Per
trial kind it prints: trials, completed right, failed with one line, wrong bytes returned, tracebacks.

    .venv/bin/python -m bench.faults --trials 100
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import tempfile
import traceback
from collections import Counter
from pathlib import Path

from moto.server import ThreadedMotoServer
from tests.conftest import free_port
from tests.fault_proxy import FaultProxy
from tests.hostile_archives import Sandbox, hostile_archive, try_extract

from dbt_ferry.core.archive import extract_zstd_stream
from dbt_ferry.core.checksums import ChunkVerifyingReader, chunk_digests
from dbt_ferry.core.errors import FerryError
from dbt_ferry.core.manifest import ReleaseManifest
from dbt_ferry.storage.s3 import S3Store


def _s3_trials(trials: int, rate: float, seed: int) -> Counter[str]:
    """Each trial: list 20 keys, read them, download a 3 MiB object, through a proxy that cuts answers (40 % of
    the faults), flips a byte (20 %), answers 500/503/SlowDown itself (25 %) or stalls for 1.5 s (15 %)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="t", AWS_SECRET_ACCESS_KEY="t",  # noqa: S106 - the emulator's
                      AWS_DEFAULT_REGION="eu-west-1")  # fmt: skip
    outcomes: Counter[str] = Counter()
    try:
        import boto3

        boto3.client("s3").create_bucket(Bucket="faults", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        rng = random.Random(seed)
        small = {f"releases/1.0.{n}/release.json": rng.randbytes(1500 + 97 * n) for n in range(20)}
        big = rng.randbytes(3 * 1024 * 1024)
        clean = S3Store("faults", "shop")
        for key, data in small.items():
            clean.write_bytes(key, data)
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp) / "big"
            source.write_bytes(big)
            clean.upload("env.tar.zst", source)
            proxy = FaultProxy(("127.0.0.1", port), cut_rate=rate * 0.4, flip_rate=rate * 0.2, error_rate=rate * 0.25,
                               stall_rate=rate * 0.15, stall=1.5, seed=seed, max_faults=10 * trials)  # fmt: skip
            os.environ["AWS_ENDPOINT_URL"] = proxy.url
            os.environ["DBT_FERRY_S3_READ_TIMEOUT"] = "0.5"  # a stall of 1.5 s is a dead link then
            for n in range(trials):
                store = S3Store("faults", "shop")
                try:
                    keys = store.list_keys("releases/")
                    read = {key: store.read_bytes(key) for key in keys}
                    dest = Path(tmp) / f"d{n}"
                    store.download("env.tar.zst", dest)
                    right = read == small and dest.read_bytes() == big
                    outcomes["completed right" if right else "wrong bytes"] += 1
                except FerryError as exc:
                    outcomes["failed, one line" if "\n" not in str(exc) else "failed, several lines"] += 1
                except Exception:  # noqa: BLE001 - what the trial counts
                    outcomes["traceback"] += 1
                    traceback.print_exc()
            for kind in ("cuts", "flips", "errors", "stalls"):
                outcomes[f"{kind} injected"] = getattr(proxy, kind)
            proxy.close()
    finally:
        server.stop()
    return outcomes


def _pack(rng: random.Random) -> bytes:
    import tarfile

    import zstandard

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n in range(40):
            data = rng.randbytes(rng.randrange(1000, 40_000))
            info = tarfile.TarInfo(f"lib/site-packages/m{n}.py")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return zstandard.ZstdCompressor().compress(raw.getvalue())


class _Watch:
    """A reader that remembers every byte it handed on (to zstd)."""

    def __init__(self, inner: ChunkVerifyingReader, handed: bytearray) -> None:
        self.inner = inner
        self.handed = handed

    def read(self, size: int = -1) -> bytes:
        piece = self.inner.read(size)
        self.handed.extend(piece)
        return piece


def _chunk_trials(trials: int, seed: int) -> Counter[str]:
    """Each trial flips one random byte of an env pack: caught before zstd sees the changed piece, or not."""
    rng = random.Random(seed)
    pack = _pack(rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "pack"
        path.write_bytes(pack)
        digests = chunk_digests(path, 16 * 1024)
        outcomes: Counter[str] = Counter()
        for n in range(trials):
            data = bytearray(pack)
            at = rng.randrange(len(data))
            data[at] ^= 1 << rng.randrange(8)
            handed = bytearray()

            reader = ChunkVerifyingReader(io.BytesIO(bytes(data)), 16 * 1024, digests, lambda i, a: ValueError(i))
            try:
                extract_zstd_stream(_Watch(reader, handed), Path(tmp) / f"x{n}", native=False)  # type: ignore[arg-type]
                outcomes["escaped"] += 1
            except ValueError:
                reached = len(handed) > at
                outcomes["caught after zstd saw it" if reached else "caught before zstd saw it"] += 1
            except FerryError:
                outcomes["caught by zstd or the tar checker"] += 1
        return outcomes


def _manifest_trials(trials: int, seed: int) -> Counter[str]:
    """Each trial flips one bit of a real-shaped release.json: refused by the strict reading, or accepted."""
    from dbt_ferry.core.manifest import Artifact, build_id

    artifacts = (
        Artifact(name="code.tar.zst", kind="code", size=123_456, sha256="a" * 64),
        Artifact(name="profiles/pro.yml", kind="profile", size=321, sha256="b" * 64, environment="pro"),
    )
    manifest = ReleaseManifest(
        project="shop", version="1.4.0", build_id=build_id(artifacts), created_at="2026-12-01T12:00:00Z",
        git_commit="0123456789abcdef0123456789abcdef01234567", dbt_version="1.11.16", python_version="3.11",
        dbt_ferry_version="0.1.0", aws_accounts={"pro": "333333333333"}, artifacts=artifacts,
    )  # type: ignore[arg-type]  # fmt: skip
    original = manifest.to_json()
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    for _ in range(trials):
        data = bytearray(original)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(7)
        try:
            parsed = ReleaseManifest.from_json(bytes(data), "trial")
        except FerryError:
            outcomes["refused"] += 1
            continue
        same = json.loads(parsed.to_json()) == json.loads(original)
        outcomes["accepted, same meaning" if same else "accepted, changed (only a signature tells)"] += 1
    return outcomes


def _archive_trials(trials: int, seed: int) -> Counter[str]:
    """Each trial extracts one generated hostile archive into a new folder twice: GNU tar writing, Python writing."""
    rng = random.Random(seed)
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Sandbox(Path(tmp))
        sandbox.prepare()
        for n in range(trials):
            archive = hostile_archive(rng, sandbox)
            decisions = []
            for native in (True, False):
                dest = Path(tmp) / f"dest-{n}-{native}"
                try:
                    outcome = try_extract(archive, dest, sandbox, native=native)
                except Exception:  # noqa: BLE001 - counted: a traceback is what the trials look for
                    outcomes["tracebacks"] += 1
                    traceback.print_exc()
                    continue
                decisions.append(outcome.accepted)
                if outcome.problems:
                    outcomes["escaped or left behind"] += 1
                    print(f"archive {n}: {outcome.problems}")
                shutil.rmtree(dest, ignore_errors=True)
            if len(set(decisions)) > 1:
                outcomes["the writers disagreed"] += 1
            elif decisions:
                outcomes["extracted by both" if decisions[0] else "refused by both, one line"] += 1
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.15, help="fault rate per connection")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for title, outcomes in (
        (f"S3 reads at a {args.rate:.0%} fault rate", _s3_trials(args.trials, args.rate, args.seed)),
        ("one flipped byte in a chunked env pack", _chunk_trials(args.trials, args.seed)),
        ("one flipped bit in release.json (unsigned)", _manifest_trials(args.trials * 3, args.seed)),
        ("generated hostile archives, each through both writers", _archive_trials(args.trials * 20, args.seed)),
    ):
        print(f"{title}: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))


if __name__ == "__main__":
    main()
