"""Command line interface (commands are added in their own modules)."""

from __future__ import annotations

import click

from ._version import __version__
from .commands.warp import warp


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="stntool")
def cli():
    """Spatial-transformer warps for image folders, with PyTorch's θ convention."""


cli.add_command(warp)


def main():
    cli(prog_name="stntool")
