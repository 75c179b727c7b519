"""The one exception type a user can fix: run.py prints its message as one line and exits."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad path, corrupt file, bad option, no GPU).

    The message must be one line that says what is wrong and how to fix it.
    ``exit_code`` is the process exit status (2 for usage and environment problems,
    1 for data problems).
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(" ".join(message.split()))
        self.exit_code = exit_code


class DataError(UserError):
    """Input data is missing, incomplete, corrupt or inconsistent (exit code 1)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=1)


class ConfigError(UserError):
    """A configuration option or the environment does not allow the run (exit code 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, exit_code=2)
