"""Image commands: build recipes from images/ into LXD images; list, delete, export, import, check."""

from __future__ import annotations

import click

from lxctool.cli import App
from lxctool.cli import emit
from lxctool.cli import format_option
from lxctool.cli import pass_app
from lxctool.cli.params import CONTAINER, IMAGE, finite, recipe_ref
from lxctool.core.errors import CheckFailed
from lxctool.report.progress import progress
from lxctool.report.render import render

LIST_COLUMNS = ["alias", "recipe", "fingerprint", "size_bytes", "built_at", "status"]


@click.group()
def image() -> None:
    """Build and manage local images (no image server is needed).

    \b
    Recipes are images/NAME.yaml (LXCTOOL_IMAGES_DIR points elsewhere). Examples:
      lxctool image build nginx          # builds debian first if it is missing or changed
      lxctool image list                 # which images are stale against their recipes
      lxctool image export nginx nginx.tar.zst   # one file to carry to an offline machine
      lxctool image import nginx.tar.zst
      lxctool image check web1           # run web1's image readiness check until it passes
    """


@image.command()
@click.argument("name", callback=recipe_ref())
@click.option("--force", is_flag=True, help="Rebuild even when the recipe and its parents are unchanged.")
@format_option
@pass_app
def build(app: App, name: str, force: bool, fmt: str) -> None:
    """Build recipe NAME (images/NAME.yaml, or a path) and import it as image alias NAME.

    Parents that are missing or changed are built first; progress goes to stderr.
    Exit 2: invalid recipe (nothing built); 1: a step failed (old image and alias kept).
    """
    from lxctool.images.build import build as do_build  # lazy: 40-90 ms, not paid by --help

    result = do_build(app.lxd, name, force)
    emit(render([result], ["name", "fingerprint", "built", "hash"], fmt, data=result))


@image.command(name="list")
@format_option
@pass_app
def list_cmd(app: App, fmt: str) -> None:
    """Images built by lxctool: alias, recipe, fingerprint, size, built at, and whether the
    recipe or a parent changed since (status: current, recipe changed, parent changed,
    builder changed, no recipe)."""
    from lxctool.images.ops import list_images  # lazy: 40-90 ms, not paid by --help

    emit(render(list_images(app.lxd), LIST_COLUMNS, fmt))


@image.command()
@click.argument("name", callback=IMAGE)
@pass_app
def delete(app: App, name: str) -> None:
    """Delete image alias NAME and its image (containers made from it keep running)."""
    from lxctool.images.ops import delete_image  # lazy: 40-90 ms, not paid by --help

    fingerprint, others = delete_image(app.lxd, name)
    if others:
        progress(f"deleted alias {name} only: image {fingerprint[:12]} stays for alias(es) {', '.join(others)}")
    else:
        progress(f"deleted image {name} ({fingerprint[:12]})")


@image.command()
@click.argument("name", callback=IMAGE)
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def export(app: App, name: str, file: str) -> None:
    """Write image NAME to FILE: one tarball (with its recipe hash) for another machine."""
    from lxctool.images.ops import export_image  # lazy: 40-90 ms, not paid by --help

    size = export_image(app.lxd, name, file)
    progress(f"exported {name} to {file} ({size} bytes)")


@image.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--alias", metavar="NAME", callback=IMAGE, help="Alias to give it (default: the recipe it was built from).")
@format_option
@pass_app
def import_cmd(app: App, file: str, alias: str | None, fmt: str) -> None:
    """Import an image FILE made by `image export` and point its alias at it."""
    from lxctool.images.ops import import_image  # lazy: 40-90 ms, not paid by --help

    result = import_image(app.lxd, file, alias)
    emit(render([result], ["name", "fingerprint"], fmt, data=result))


@image.command()
@click.argument("container", callback=CONTAINER)
@click.option("--timeout", type=float, default=120, show_default=True, callback=finite(0, 86400),
              help="Seconds to keep trying.")
@format_option
@pass_app
def check(app: App, container: str, timeout: float, fmt: str) -> None:
    """Run the readiness check of CONTAINER's image inside it until it succeeds.

    Exit 0 ready; 3 still failing at the timeout (its output is shown); 2 no such container.
    `lxctool launch` runs the same check after the IPv4 appears (with --wait, the default).
    """
    from lxctool.images.ops import wait_ready  # lazy: 40-90 ms, not paid by --help

    result = wait_ready(app.lxd, container, timeout)
    emit(render([result], ["name", "image", "ready", "seconds", "command"], fmt, data=result))
    if not result["ready"]:
        raise CheckFailed(f"{container}: readiness check still failing after {timeout:g}s: "
                          f"{result['output']}")


def register(group: click.Group) -> None:
    """Add the image group."""
    group.add_command(image)
