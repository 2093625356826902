"""The one exception a command raises to stop with a message and an exit code.

The top level (``main``) prints it as one line on stderr; nothing below it prints errors.
"""

from __future__ import annotations

EXIT_FAILURE = 1  # the service refused or failed the request
EXIT_USAGE = 2  # the command line cannot be used (argparse uses 2 as well)


class CliError(Exception):
    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)
