from __future__ import annotations

from pathlib import Path

import click

from network_anim.cli.common import chosen_config, config_with_positional, console


@click.command()
@config_with_positional
def validate(config_file: Path | None, config_path: Path | None) -> None:
    """Check a config file (-c FILE, $NETANIM_CONFIG, ./netanim.toml; a positional
    CONFIG_FILE is the same): schema, key names, references, channel definitions, templates.

    Reports every problem with its key path (campaigns[2].steps[0].urgency: ...) and exits
    1; changes nothing anywhere.

    \b
    Example:
      netanim validate
    """
    from network_anim.app import open_app
    from network_anim.challenges.standings import variable_sources
    from network_anim.engine.checks import config_problems
    from network_anim.errors import UserError

    config_file = chosen_config(config_file, config_path)
    if config_file is None:
        raise UserError(
            "no config file to check",
            ["pass -c FILE, set NETANIM_CONFIG, or run it where netanim.toml is"],
        )
    app = open_app(config_file, variables=variable_sources())
    problems = config_problems(
        app.config,
        app.templates,
        app.loaded.base_dir,
        today=app.clock.now().date(),
        sources=app.variables,
    )
    from network_anim.challenges.objectives import read_objectives

    for challenge in app.config.challenges:
        if challenge.objectives is not None:
            try:
                read_objectives(app, challenge)
            except UserError as exc:
                problems.extend([exc.summary, *exc.problems])
    if problems:
        raise UserError(f"{config_file}: {len(problems)} problem(s)", problems)
    cfg = app.config
    console.print(
        f"{config_file}: OK — {len(cfg.audiences)} audiences, {len(cfg.campaigns)} campaigns, "
        f"{len(app.definitions)} channels ({', '.join(sorted(app.definitions))})"
    )
    from network_anim.config.defaults import resolve_folder

    # Which folders were read: the project's own, or the ones that ship with the package.
    for kind in ("channels", "templates"):
        console.print(f"  {kind}: {resolve_folder(app.loaded, kind).describe()}", soft_wrap=True)
