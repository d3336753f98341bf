"""`lxctool convert`: a docker-compose file as the equivalent lxctool stack file."""

from __future__ import annotations

from pathlib import Path

import click

from lxctool.cli import emit


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the stack file here instead of stdout.")
@click.option("--allow-bind-mounts", is_flag=True,
              help="Carry bind mounts over as disk devices (they reach into the host).")
@click.option("--strict", is_flag=True, help="Refuse (exit 2) when any key cannot be carried over.")
def convert(file: Path, output: Path | None, allow_bind_mounts: bool, strict: bool) -> None:
    """Print the lxctool stack file equivalent to a docker-compose FILE.

    Every key that cannot be carried over, or changes meaning, is a comment in the output and a
    line on stderr. `lxctool up -f FILE` runs exactly this stack.

    \b
    Examples:
      lxctool convert docker-compose.yml
      lxctool convert compose.yaml -o stack.yaml --strict
    """
    # lazy: `lxctool --help` loads no stack or compose code
    from lxctool.report.progress import progress
    from lxctool.stacks.compose_file import load_compose
    from lxctool.stacks.convert import stack_yaml

    loaded = load_compose(file, force=True, allow_bind_mounts=allow_bind_mounts, strict=strict, label="FILE")
    assert loaded is not None  # force=True always reads it as compose
    stack, notes = loaded
    for note in notes:
        progress(f"note: {note.line()}")
    text = stack_yaml(stack, notes, file.name)
    if output is None:
        emit(text.rstrip("\n"))
    else:
        output.write_text(text)
        progress(f"wrote {output}")


def register(group: click.Group) -> None:
    """Add convert."""
    group.add_command(convert)
