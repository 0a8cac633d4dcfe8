"""``tasklens`` command line: thin commands over the library, one module per command."""

from __future__ import annotations

import importlib

import click

__all__ = ["main"]

#: Subcommand name -> "module:attribute" of its click command, imported when it is used.
COMMANDS: dict[str, str] = {
    "demo": "tasklens.cli.demo:demo",
    "dlq": "tasklens.cli.dlq:dlq",
    "health": "tasklens.cli.health:health",
    "monitor": "tasklens.cli.monitor:monitor",
    "queues": "tasklens.cli.queues:queues",
    "workers": "tasklens.cli.workers:workers",
}


class LazyGroup(click.Group):
    """A group whose commands live in their own modules and import only when run."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attribute = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tasklens")
def main() -> None:
    """tasklens: OpenTelemetry-native observability for Dramatiq and Celery task queues."""
