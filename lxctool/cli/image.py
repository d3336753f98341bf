"""Image commands: build recipes from images/ into LXD images."""

from __future__ import annotations

import click

from . import App, emit, format_option, pass_app


@click.group()
def image() -> None:
    """Build and manage local images (no image server is needed)."""


@image.command()
@click.argument("name")
@click.option("--force", is_flag=True, help="Rebuild even when the recipe is unchanged.")
@format_option
@pass_app
def build(app: App, name: str, force: bool, fmt: str) -> None:
    """Build recipe NAME (images/NAME.yaml, or a path) and import it as image alias NAME."""
    from ..images import build as do_build
    from ..render import render

    result = do_build(app.lxd, name, force)
    emit(render([result], ["name", "fingerprint", "built"], fmt, data=result))


def register(group: click.Group) -> None:
    """Add the image group."""
    group.add_command(image)
