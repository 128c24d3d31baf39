"""Release commands: package, publish, releases, promote, fetch."""

from __future__ import annotations

import click
from rich.table import Table

from dbt_ferry import api
from dbt_ferry.cli.options import env_option, project_dir_option, store_option
from dbt_ferry.console import out, transfer_progress
from dbt_ferry.core.manifest import ReleaseManifest
from dbt_ferry.release.contents import CodeContents


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # pragma: no cover


def _describe(manifest: ReleaseManifest) -> str:
    commit = (manifest.git_commit or "no commit")[:12] + (" (dirty)" if manifest.git_dirty else "")
    return f"{manifest.project} {manifest.version} [build {manifest.build_id}, {commit}]"


def _print_contents(contents: CodeContents) -> None:
    out.print(f"code.tar.zst of {contents.root}: {len(contents.shipped)} files, {_size(contents.size)}")
    width = max((len(s.arcname) for s in contents.shipped), default=0)
    for shipped in contents.shipped:
        note = f"  ({shipped.note})" if shipped.note else ""
        out.print(f"  {shipped.arcname:<{width}} {_size(shipped.size):>10}{note}")
    for package in contents.packages:
        out.print(
            f"Local package {package.local} ({package.source}) ships as {package.folder}/: "
            f"{package.files} files, {_size(package.size)}"
        )
    if contents.left_out:
        out.print(f"Left out ({len(contents.left_out)}):")
        width = max(len(item.path) for item in contents.left_out)
        for item in contents.left_out:
            out.print(f"  {item.path:<{width}}  {item.reason}")
    if contents.problems:
        out.print(f"Stops packaging ({len(contents.problems)}):")
        for problem in contents.problems:
            out.print(f"  {problem}")


@click.command("package")
@project_dir_option
@click.option("--with-env", is_flag=True, help="Also pack a relocatable virtualenv built from the lock file.")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Output folder (default: .ferry/build/VERSION)."
)
@click.option(
    "--list",
    "list_only",
    is_flag=True,
    help="Only show what code.tar.zst would hold (path, size) and what it leaves out and why; write nothing.",
)
@click.option(
    "--allow-literal-secrets",
    is_flag=True,
    help="Package profiles that hold literal passwords or tokens (they are published in clear).",
)
def package_cmd(
    project_dir: str | None, with_env: bool, out_dir: str | None, list_only: bool, allow_literal_secrets: bool
) -> None:
    """Build a release of the dbt project into a local folder."""
    if list_only:
        if with_env or out_dir:
            raise click.UsageError("--list writes nothing: it takes neither --with-env nor --out")
        contents = api.package_contents(project_dir)
        _print_contents(contents)
        contents.check()
        return
    built = api.package(project_dir, out=out_dir, with_env=with_env, allow_literal_secrets=allow_literal_secrets)
    out.print(f"Packaged {_describe(built.manifest)} into {built.directory}")
    for artifact in built.manifest.artifacts:
        out.print(f"  {artifact.name:<40} {_size(artifact.size):>10}  sha256 {artifact.sha256[:16]}…")


@click.command("publish")
@env_option
@project_dir_option
@store_option
@click.option("--promote", is_flag=True, help="Move the environment's channel to the published version.")
@click.option("--force", is_flag=True, help="Replace a published version that has other content.")
@click.option("--with-env", is_flag=True, help="Package with an env pack (ignored with --from).")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(file_okay=False, exists=True),
    help="Publish a release built by package --out.",
)
@click.option(
    "--allow-literal-secrets",
    is_flag=True,
    help="Package profiles that hold literal passwords or tokens (they are published in clear).",
)
def publish_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    promote: bool,
    force: bool,
    with_env: bool,
    from_dir: str | None,
    allow_literal_secrets: bool,
) -> None:
    """Package the project (unless --from) and upload the release to the environment's store."""
    with transfer_progress("uploading") as progress:
        result = api.publish(
            env,
            project_dir,
            promote=promote,
            force=force,
            with_env=with_env,
            from_dir=from_dir,
            store=store,
            progress=progress,
            allow_literal_secrets=allow_literal_secrets,
        )
    verb = {
        "published": "Published",
        "unchanged": "Already published (identical)",
        "replaced": "Replaced",
        "uploaded again": "Uploaded again (identical build, every artifact rewritten)",
    }
    out.print(f"{verb[result.status]} {_describe(result.manifest)} in {result.store_url}")
    if result.promoted:
        previous = f" (was {result.promoted.previous})" if result.promoted.previous else ""
        out.print(f"Channel now points at {result.promoted.version}{previous}")


@click.command("releases")
@env_option
@project_dir_option
@store_option
def releases_cmd(env: str | None, project_dir: str | None, store: str | None) -> None:
    """List published versions, newest first, and the one the channel points at."""
    target, entries, channel = api.releases(env, project_dir, store=store)
    if not entries:
        missing = target.store.missing()
        out.print(
            f"No releases in {target.store.url}: {missing} (publish creates it; check --store if you expected some)"
            if missing
            else f"No releases in {target.store.url}"
        )
        return
    table = Table(title=f"Releases in {target.store.url}", title_justify="left")
    for column in ("", "version", "created (UTC)", "commit", "dbt", "env pack", "build"):
        table.add_column(column, no_wrap=True)
    for entry in entries:
        m = entry.manifest
        if m is None:
            marker = f"→ {target.config.name}" if entry.current else ""
            table.add_row(marker, entry.version, "unreadable", entry.problem or "", "", "", "")
            continue
        table.add_row(
            f"→ {target.config.name}" if entry.current else "",
            m.version,
            f"{m.created_at:%Y-%m-%d %H:%M}",
            (m.git_commit or "")[:12] + ("*" if m.git_dirty else ""),
            m.dbt_version or "",
            ", ".join(f"{a.python}/{a.platform}" for a in m.of_kind("env")) or "-",
            m.build_id,
        )
    out.print(table)
    if channel is None:
        out.print(f"Channel {target.config.name}: not set (dbt-ferry promote --env {target.config.name} VERSION)")


@click.command("promote")
@env_option
@project_dir_option
@store_option
@click.argument("version")
def promote_cmd(env: str | None, project_dir: str | None, store: str | None, version: str) -> None:
    """Point the environment's channel at VERSION (deploy, or roll back)."""
    channel = api.promote(env, version, project_dir, store=store)
    previous = f" (was {channel.previous})" if channel.previous else ""
    out.print(f"Channel now points at {channel.version}{previous}")


@click.command("fetch")
@env_option
@project_dir_option
@store_option
@click.option("--version", "version", metavar="V", help="Release version (default: the channel's).")
@click.option("--dest", required=True, type=click.Path(file_okay=True), help="New or empty folder to extract into.")
@click.option("--no-env", is_flag=True, help="Do not download the env pack.")
def fetch_cmd(
    env: str | None,
    project_dir: str | None,
    store: str | None,
    version: str | None,
    dest: str,
    no_env: bool,
) -> None:
    """Download a release, verify every checksum, and extract it safely into --dest."""
    with transfer_progress("downloading") as progress:
        fetched = api.fetch(
            env,
            dest,
            version=version,
            project_dir=project_dir,
            store=store,
            with_env=not no_env,
            progress=progress,
        )
    out.print(f"Fetched {_describe(fetched.manifest)} for {fetched.environment} into {fetched.project_dir}")
    out.print(f"  profiles.yml for {fetched.environment}: {fetched.profiles_dir / 'profiles.yml'}")
    if fetched.env_dir:
        out.print(f"  environment: {fetched.env_dir}")
