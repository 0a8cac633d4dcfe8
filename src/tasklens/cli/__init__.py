"""``tasklens`` command line: thin commands over the library, one module per command.

The commands need the monitor's stack (``pip install 'tasklens[monitor]'``); a worker install of
tasklens alone (the instrumentation) has the ``tasklens`` script too, which then says so in one
line instead of a traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

__all__ = ["MONITOR_EXTRA_HINT", "main"]

#: Subcommand name -> "module:attribute" of its click command, imported when it is used.
COMMANDS: dict[str, str] = {
    "demo": "tasklens.cli.demo:demo",
    "dlq": "tasklens.cli.dlq:dlq",
    "health": "tasklens.cli.health:health",
    "monitor": "tasklens.cli.monitor:monitor",
    "queues": "tasklens.cli.queues:queues",
    "workers": "tasklens.cli.workers:workers",
}
#: What to install for the commands, said when a package of it is missing.
MONITOR_EXTRA_HINT = "pip install 'tasklens[monitor]'"
#: Exit status when the command line's dependencies are not installed.
EXIT_MISSING_STACK = 2


def missing_stack(error: ModuleNotFoundError, command: str = "") -> NoReturn:
    """Say on one line which package is missing and what to install, and exit with status 2.

    Parameters:
      error(ModuleNotFoundError): The failed import.
      command(str): The subcommand that needed it, if any.
    """
    what = f"tasklens {command}".strip()
    print(
        f"tasklens: {what} needs the monitor stack (no module {error.name!r}): install tasklens[monitor],"
        f" e.g. {MONITOR_EXTRA_HINT}",
        file=sys.stderr,
    )
    sys.exit(EXIT_MISSING_STACK)


def _without_click(*args: Any, **kwargs: Any) -> NoReturn:
    try:
        import click  # noqa: F401
    except ModuleNotFoundError as error:
        missing_stack(error, sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] in COMMANDS else "")
    raise AssertionError("unreachable: click is importable")


try:
    import click
except ModuleNotFoundError:
    main: Any = _without_click
else:

    class LazyGroup(click.Group):
        """A group whose commands live in their own modules and import only when run."""

        def list_commands(self, ctx: click.Context) -> list[str]:
            return sorted(COMMANDS)

        def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
            target = COMMANDS.get(cmd_name)
            if target is None:
                return None
            module_name, _, attribute = target.partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name is not None and error.name.startswith("tasklens"):
                    raise
                missing_stack(error, cmd_name)
            command: click.Command = getattr(module, attribute)
            return command

    @click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(package_name="tasklens")
    def _main() -> None:
        """tasklens: OpenTelemetry-native observability for Dramatiq and Celery task queues."""

    main = _main
