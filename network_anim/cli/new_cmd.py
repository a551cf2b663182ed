from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import console


@click.command()
@click.argument("folder", metavar="DIR", type=click.Path(path_type=Path, file_okay=False))
def new(folder: Path) -> None:
    """Write a starter project into DIR (a new or empty folder): netanim.toml, the channel
    definitions (channels/), the message templates (templates/), a sample network, sales
    and objectives (examples/), and a README.md of what to change first.

    Every command run in DIR reads its netanim.toml, on the embedded default (SQLite
    under var/, emails, SMS and letters written to files: nothing is sent).

    \b
    Example:
      netanim new my-network
      cd my-network && netanim init && netanim validate
    """
    written = write_project(folder)
    console.print(f"{folder}: new project ({', '.join(written)})", soft_wrap=True)
    console.print("next:", highlight=False)
    for line in _next_steps(folder):
        console.print(f"  {line}", highlight=False, soft_wrap=True)


def write_project(folder: Path) -> list[str]:
    """Copy the packaged defaults into ``folder``; all or nothing: a failure halfway
    removes what was written, so a retry finds the folder as it was."""
    import shutil

    from network_anim.config.defaults import (
        default_channels_dir,
        default_templates_dir,
        example_config,
        examples_dir,
    )
    from network_anim.errors import UserError

    _check_target(folder)
    # The outermost folder of the path that does not exist yet: what a failure removes.
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    created = missing[-1] if missing else None
    sources = {
        "channels": default_channels_dir(),
        "templates": default_templates_dir(),
        "examples": examples_dir(),
    }
    config_text = example_config().read_text(encoding="utf-8")
    written: list[str] = []
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "netanim.toml").write_text(_project_config(config_text), encoding="utf-8")
        written.append("netanim.toml")
        for name, source in sources.items():
            shutil.copytree(source, folder / name, ignore=shutil.ignore_patterns(".*"))
            count = sum(1 for p in (folder / name).rglob("*") if p.is_file())
            written.append(f"{name}/ ({count} files)")
        (folder / "README.md").write_text(_readme(folder), encoding="utf-8")
        written.append("README.md")
    except BaseException as exc:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        else:  # it was empty: empty it again
            for entry in folder.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(
                f"{folder}: cannot write the project ({exc.strerror or exc})",
                ["check the folder's permissions and free space; nothing was left behind"],
            ) from None
        raise
    return written


def _check_target(folder: Path) -> None:
    from network_anim.errors import UserError

    if folder.exists() and not folder.is_dir():
        raise UserError(
            f"{folder}: exists and is not a folder",
            ["netanim new writes a project into a new or empty folder: pick another name"],
        )
    if folder.is_dir():
        entries = sorted(p.name for p in folder.iterdir())
        if entries:
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise UserError(
                f"{folder}: not empty ({len(entries)} entries: {shown})",
                [
                    "netanim new never writes over files: pick a new or empty folder, "
                    "e.g. netanim new my-network",
                ],
            )


def _project_config(example: str) -> str:
    # The example config sits beside channels/, templates/ and examples/ in the package
    # just as netanim.toml does in the project, so its relative paths already fit; only
    # the commands its comments show name another file.
    header = (
        "# Written by `netanim new` from the example config of network-anim. Every\n"
        "# command run in this folder reads it (or pass -c FILE / set NETANIM_CONFIG).\n"
    )
    return header + example.replace("config.example.toml", "netanim.toml")


def _next_steps(folder: Path) -> list[str]:
    return [
        f"cd {folder}",
        "netanim init",
        "netanim import network examples/network.csv",
        "netanim broadcast --audience all --urgency info --template welcome --id w1 "
        "--dry-run --explain",
        "netanim demo",
    ]


def _readme(folder: Path) -> str:
    steps = "\n".join(_next_steps(Path("."))[1:])
    return f"""# {folder.resolve().name}: a network-anim project

Written by `netanim new`. Every `netanim` command run in this folder reads
`netanim.toml`; relative paths in it are relative to this folder. As written, nothing
leaves the machine: the database is `var/netanim.db` (SQLite), emails are `.eml` files
in `var/outbox/email/`, SMS are JSON lines in `var/outbox/sms/`, letters are PDFs in
`var/exports/print/`.

## Try it

```sh
{steps}
```

`netanim demo` runs four simulated months of the example campaigns on a generated
network, in `var/demo/` (report: `var/demo/report.html`).

## What to change first

1. `examples/network.csv`: your companies and contacts, one row per contact (the
   columns are the ones of the sample; `netanim import network --help`). Import with
   `netanim import network FILE.csv --dry-run` first: it checks and writes nothing.
   A file with other columns (a partner's export, like `examples/partner-export.csv`)
   imports through a column mapping: `netanim import network FILE.csv --suggest-map >
   map.toml` proposes one, check it, then import with `--map map.toml`.
2. `netanim.toml`, `[engine]`: `base_url` (the public address of the partner portal:
   every link points there), `timezone`, `default_region`, `language`; the signing key
   lives in the environment variable `secret_key_env` names, never in the file.
3. `netanim.toml`, `[channels.*]`: the senders (`sender`, `sender_name`, the print
   channel's `sender_lines`, `signature`, `place`); when ready to send for real,
   `transport = "smtp"` for email and `"twilio"` for SMS, credentials in the
   environment variables the `*_env` keys name.
4. `netanim.toml`: `[[audiences]]`, `[[campaigns]]` (schedules, steps) and
   `[[challenges]]` (dates, scoring, `examples/objectives.csv`), then
   `netanim validate`: it names the key and line of every problem.
5. `templates/<channel>/<name>.<language>.txt` (+ `.html` for email): the wording.
   The portal page (`templates/intranet/`) is required for every message.
6. `channels/*.toml`: cost, rate, legal send windows of each channel. Delete the
   folder to follow the definitions that ship with network-anim instead (the same goes
   for `templates/`).
"""
