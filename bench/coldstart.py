"""Benchmark: cold and warm start of ``dbt-ferry run`` with a real env pack, from a local store and from S3.

    .venv/bin/python bench/coldstart.py [--runs 3] [--project examples/shop] [--add-deps awswrangler]
                                        [--json bench/out/coldstart.json]

Packages the project with ``--with-env`` once (the unpacked env's size and file count and the packs' sizes are
reported) and publishes it to a local store and to S3 (a moto ThreadedMotoServer on 127.0.0.1 in a process of its
own, reached through ``AWS_ENDPOINT_URL``). ``--add-deps`` packages a copy of the project whose locked dependencies
add these requirements (``uv add``, resolved on PyPI), e.g. ``awswrangler`` (pandas, numpy) for a bigger env.
``--workdir`` puts the stores, caches and extractions on another filesystem (``/dev/shm``: no disk filesystem).
Then, alternating the order of the stores each round:

- start: ``dbt-ferry run --env local --no-docs --store URL`` from process start to dbt's first event (the line
  "Running with dbt=" printed by the Prefect log handler); the process tree is killed at that line. *cold*: an
  empty ``DBT_FERRY_CACHE_DIR``; *warm*: the cache filled by a previous run. A local Prefect server is started once.
  Run with ``PYTHONDONTWRITEBYTECODE=1``, as in the runtime image; one untimed run per store first lets the
  bootstrap's own venv compile its modules (a pip-installed image has them compiled).
- fetch: the same release's fetch in-process (``fetch_release``, cold cache): download, verify, unpack the env;
  with GNU tar writing the files (the default when it is on PATH), and with Python's tarfile (no tar on PATH).
- reference: the same unpacked virtualenv (the same files, .pyc included) packed with venv-pack as .tar.gz
  (tar+gzip with ``tarfile`` when venv-pack refuses; the JSON says which), uploaded to the same store, then
  downloaded whole (``download_file`` on S3, a file copy locally) and extracted with ``tarfile.extractall`` into an
  empty folder.

Every unpacked tree stays on disk until the end (~0.7 GB each, ~17 GB for 3 runs of the shop): deleting ~30,000
inodes between runs makes the next runs' file creation several times slower on ext4 (its inode allocator skips
recently deleted inodes, ``recently_deleted()``; tar extracting the same tar: 0.8 s vs 6-8 s), a state no fresh
host starts in. ``--delete-between`` deletes them at once (needed on tmpfs, where they take memory). For the same
reason the env is built in ``--build-tmp`` (``/dev/shm`` by default), since packaging deletes its build venv.

This process itself runs without ``PYTHONDONTWRITEBYTECODE`` (a lazy import inside a timed fetch would otherwise be
compiled from source every time), and the page cache is flushed (``sync``) before every timed fetch so that the
previous one's writes do not land in it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BIN,
    OUT,
    REPO,
    base_env,
    fmt,
    free_port,
    machine,
    prefect_server,
    print_table,
    run_measured,
    stats,
    write_json,
)

venv_pack: Any = None

FIRST_EVENT = "Running with dbt="
BUCKET = "ferry-bench"
MOTO = (
    "import time; from moto.server import ThreadedMotoServer; "
    "ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False).start(); time.sleep(1e9)"
)


def wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def bench_project(project: Path, add: list[str], tmp: Path, env: dict[str, str]) -> Path:
    """``project`` itself, or a copy whose locked dependencies add ``add`` (pointed at this checkout)."""
    if not add:
        return project  # used in place (read only): its uv sources point at this repository by a relative path
    copy = tmp / project.name
    ignore = shutil.ignore_patterns(".ferry", "target", "logs", "dbt_packages", ".venv", "*.duckdb")
    shutil.copytree(project, copy, ignore=ignore, symlinks=True)
    pyproject, lock = copy / "pyproject.toml", copy / "uv.lock"
    pyproject.write_text(pyproject.read_text().replace('path = "../.."', f'path = "{REPO}"'))
    lock.write_text(re.sub(r'((?:directory|path) = ")\.\./\.\./?(")', rf"\g<1>{REPO}\g<2>", lock.read_text()))
    uv = shutil.which("uv", path=env["PATH"]) or "uv"
    subprocess.run([uv, "add", "--no-sync", *add], cwd=copy, env=env, check=True)
    return copy


def env_size(env_dir: Path) -> dict[str, int]:
    """Bytes of the regular files of an unpacked env, how many files, how many of them .pyc, links, dirs."""
    size = files = pycs = links = dirs = 0
    for dirpath, dirnames, filenames in os.walk(env_dir):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            if stat.S_ISLNK(st.st_mode):
                links += 1
            elif stat.S_ISDIR(st.st_mode):
                dirs += 1
            else:
                size += st.st_size
                files += 1
                pycs += name.endswith(".pyc")
    return {"bytes": size, "files": files, "pyc_files": pycs, "symlinks": links, "dirs": dirs}


@contextlib.contextmanager
def no_tar_on_path(tmp: Path) -> Iterator[None]:
    """PATH without any tar: dbt-ferry extracts with Python's tarfile (its fallback)."""
    empty = tmp / "no-tar"
    empty.mkdir(exist_ok=True)
    saved = os.environ["PATH"]
    os.environ["PATH"] = str(empty)
    try:
        yield
    finally:
        os.environ["PATH"] = saved


def pack_reference(env_dir: Path, dest: Path) -> str:
    """venv-pack the unpacked env; fall back to tar+gzip. Returns the method used."""
    try:
        venv_pack.pack(prefix=str(env_dir), output=str(dest), force=True, compress_level=4)
        return "venv-pack"
    except venv_pack.VenvPackException as exc:
        refused = str(exc)
    print(f"venv-pack refused ({refused}); using tar+gzip")
    with tarfile.open(dest, "w:gz", compresslevel=4) as tar:  # venv-pack's default level
        tar.add(env_dir, arcname=".")
    return "tar+gzip (tarfile, level 4)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--project", type=Path, default=REPO / "examples" / "shop")
    parser.add_argument("--add-deps", nargs="*", default=[], metavar="REQ", help="add to a copy's locked deps")
    parser.add_argument("--workdir", type=Path, help="where stores, caches and extractions go (default: $TMPDIR)")
    parser.add_argument("--delete-between", action="store_true", help="delete each run's trees at once (tmpfs)")
    shm = Path("/dev/shm")  # noqa: S108 - a memory filesystem for a build that is deleted, not a shared file
    parser.add_argument("--build-tmp", type=Path, default=shm if shm.is_dir() else None,
                        help="TMPDIR of `package --with-env` (default /dev/shm when there)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=OUT / "coldstart.json")
    args = parser.parse_args()
    # Bytecode is written as usual here and by the set-up commands (see above); the timed starts set it back.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    load_before = os.getloadavg()
    global venv_pack
    import boto3
    import venv_pack

    from dbt_ferry.config.store_url import parse_store_url
    from dbt_ferry.core.gnutar import find_gnu_tar
    from dbt_ferry.release.fetch import fetch_release
    from dbt_ferry.storage import open_store

    tar = find_gnu_tar()
    print(f"GNU tar: {tar or 'not found: dbt-ferry extracts in Python'}; load average {load_before}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="ferry-bench-cold-", dir=args.workdir))
    moto_port = free_port()
    # The emulator runs in its own process, as S3 would: in this process it would share the GIL with the
    # in-process fetches measured below (and slow them down by half).
    moto = subprocess.Popen(
        [str(BIN / "python"), "-c", MOTO.format(port=moto_port)], env=base_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{moto_port}"
    wait_http(endpoint + "/moto-api/")
    try:
        with prefect_server() as api:
            env = base_env(AWS_ENDPOINT_URL=endpoint, PREFECT_API_URL=api, DBT_FERRY_WORK_DIR=str(tmp / "work"),
                           SHOP_DUCKDB_PATH=str(tmp / "shop.duckdb"))  # fmt: skip
            os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                                    "AWS_DEFAULT_REGION")})  # fmt: skip
            s3 = boto3.client("s3", endpoint_url=endpoint)
            s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
            project = bench_project(args.project.resolve(), args.add_deps, tmp, env)
            build = tmp / "build"
            started = time.perf_counter()
            # The env is built (and deleted) in --build-tmp: not among the inodes the timed runs allocate.
            build_env = {**env, "TMPDIR": str(args.build_tmp)} if args.build_tmp else env
            subprocess.run([str(BIN / "dbt-ferry"), "package", "--with-env", "--project-dir", str(project),
                            "--out", str(build)], env=build_env, check=True)  # fmt: skip
            package_s = time.perf_counter() - started
            pack = next(build.glob("env-*.tar.zst"))
            stores = {"local": str(tmp / "store"), "s3": f"s3://{BUCKET}/shop"}
            for url in stores.values():
                subprocess.run([str(BIN / "dbt-ferry"), "publish", "--env", "local", "--promote", "--from", str(build),
                                "--project-dir", str(project), "--store", url], env=env, check=True,
                               stdout=subprocess.DEVNULL)  # fmt: skip

            # The reference pack, from an unpacked copy of the same env.
            seed_cache = tmp / "seed-cache"
            fetch_release(open_store(parse_store_url(stores["local"])), "local", tmp / "seed-fetch",
                          cache_dir=seed_cache)  # fmt: skip
            env_dir = next((seed_cache / "envs").iterdir())
            size = env_size(env_dir)
            print(f"unpacked env: {size['bytes'] / 1e6:.0f} MB in {size['files']} files ({size['pyc_files']} .pyc), "
                  f"{size['symlinks']} links, {size['dirs']} dirs", flush=True)  # fmt: skip
            ref_pack = tmp / "reference-env.tar.gz"
            method = pack_reference(env_dir, ref_pack)
            pack_bytes, ref_bytes = pack.stat().st_size, ref_pack.stat().st_size
            pack_name = pack.name
            (tmp / "store" / "reference").mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ref_pack, tmp / "store" / "reference" / ref_pack.name)
            s3.upload_file(str(ref_pack), BUCKET, f"shop/reference/{ref_pack.name}")

            results: dict[str, list[float]] = {}
            log_dir = args.json.parent / "logs"
            log_dir.mkdir(parents=True, exist_ok=True)

            def done(*trees: Path) -> None:
                """Trees stay until the end unless --delete-between (see the module's docstring)."""
                if args.delete_between:
                    for tree in trees:
                        shutil.rmtree(tree)

            def start(kind: str, where: str, cache: Path, r: int, *, warmup: bool = False) -> None:
                # As in the runtime image: no bytecode written (the env pack ships its own).
                run_env = {**env, "DBT_FERRY_CACHE_DIR": str(cache)}
                if not warmup:
                    run_env["PYTHONDONTWRITEBYTECODE"] = "1"
                m = run_measured(
                    [str(BIN / "dbt-ferry"), "run", "--env", "local", "--no-docs", "--store", stores[where],
                     "--project-dir", str(project)],
                    env=run_env, stop_on=FIRST_EVENT,
                    log=log_dir / f"coldstart-{'warmup' if warmup else kind}-{where}-{r}.log", timeout=600,
                )  # fmt: skip
                if m.first_match is None:
                    raise SystemExit(f"no '{FIRST_EVENT}' in the {kind} run from {where}; see the log in {log_dir}")
                if warmup:
                    print(f"  warm-up start {where:5}: {m.first_match:6.2f} s (not counted)", flush=True)
                    return
                results.setdefault(f"start_{kind}_{where}", []).append(m.first_match)
                print(f"  run {r} start {kind:4} {where:5}: {m.first_match:6.2f} s", flush=True)

            def fetch(where: str, r: int, *, python: bool = False) -> None:
                key = f"fetch_{'python' if python else 'ferry'}_{where}"
                dest, cache = tmp / f"{key}-{r}", tmp / f"{key}-cache-{r}"
                os.sync()
                with no_tar_on_path(tmp) if python else contextlib.nullcontext():
                    started = time.perf_counter()
                    fetch_release(open_store(parse_store_url(stores[where])), "local", dest, cache_dir=cache)
                    results.setdefault(key, []).append(time.perf_counter() - started)
                done(dest, cache)

            def reference(where: str, r: int) -> None:
                work = tmp / f"ref-{where}-{r}"
                work.mkdir()
                os.sync()
                started = time.perf_counter()
                local = work / ref_pack.name
                if where == "s3":
                    s3.download_file(BUCKET, f"shop/reference/{ref_pack.name}", str(local))
                else:
                    shutil.copyfile(tmp / "store" / "reference" / ref_pack.name, local)
                with tarfile.open(local, "r:gz") as tar:
                    tar.extractall(work / "env", filter="tar")
                results.setdefault(f"fetch_reference_{where}", []).append(time.perf_counter() - started)
                done(work)

            for where in ("local", "s3"):
                start("cold", where, tmp / f"cache-warmup-{where}", 0, warmup=True)
                done(tmp / f"cache-warmup-{where}")
            for r in range(args.runs):
                for where in ("local", "s3") if r % 2 == 0 else ("s3", "local"):
                    cache = tmp / f"cache-{where}-{r}"
                    start("cold", where, cache, r)
                    start("warm", where, cache, r)
                    done(cache)
                    steps = ["ferry", "reference", "python"]
                    for step in steps if r % 2 == 0 else steps[::-1]:
                        if step == "reference":
                            reference(where, r)
                        else:
                            fetch(where, r, python=step == "python")
                    print(f"  run {r} fetch {where}: ferry {results[f'fetch_ferry_{where}'][-1]:.2f} s, "
                          f"reference {results[f'fetch_reference_{where}'][-1]:.2f} s, "
                          f"ferry in Python {results[f'fetch_python_{where}'][-1]:.2f} s", flush=True)  # fmt: skip
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = {k: stats(v) for k, v in results.items()}
    rows = []
    for where in ("local", "s3"):
        ferry, ref, python = (summary[f"fetch_{k}_{where}"] for k in ("ferry", "reference", "python"))
        rows += [
            [where, "dbt-ferry run, cold cache: start to first dbt event", fmt(summary[f"start_cold_{where}"]), ""],
            [where, "dbt-ferry run, warm cache: start to first dbt event", fmt(summary[f"start_warm_{where}"]), ""],
            [where, "dbt-ferry fetch_release (download+verify+unpack, GNU tar)", fmt(ferry), ""],
            [where, "dbt-ferry fetch_release, no tar on PATH (Python)", fmt(python),
             f"{ref['median'] / python['median']:.2f}x"],
            [where, f"reference: download whole + extractall ({method})", fmt(ref),
             f"{ref['median'] / ferry['median']:.2f}x"],
        ]  # fmt: skip
    load_after = os.getloadavg()
    print(f"unpacked env: {size['bytes'] / 1e6:.0f} MB in {size['files']} files ({size['pyc_files']} .pyc); "
          f"env pack {pack_name}: {pack_bytes / 2**20:.1f} MiB (zstd); reference .tar.gz: "
          f"{ref_bytes / 2**20:.1f} MiB; package --with-env took {package_s:.1f} s")  # fmt: skip
    print(f"load average before {load_before}, after {load_after}")
    print_table(["store", "what", "s median (min-max)", "reference/x"], rows)
    write_json(args.json, {
        "machine": machine(), "runs": args.runs, "project": str(args.project), "added_deps": args.add_deps,
        "workdir": str(tmp.parent), "delete_between": args.delete_between, "build_tmp": str(args.build_tmp),
        "gnu_tar": tar, "env_pack": pack_name, "env_pack_bytes": pack_bytes, "unpacked_env": size,
        "reference_method": method, "reference_pack_bytes": ref_bytes, "package_with_env_s": package_s,
        "loadavg_before": load_before, "loadavg_after": load_after, "results": summary,
    })  # fmt: skip


if __name__ == "__main__":
    main()
