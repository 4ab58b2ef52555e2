"""One error type for everything a user can get wrong.

The CLI turns a `MixsdError` into a single line on stderr and exit code 2, so a
bad file or flag never shows a traceback. Messages name the file and line when
there is one, and say how to fix the problem when we know.
"""

from __future__ import annotations


class MixsdError(Exception):
    """A user-facing error: bad input, missing file, unknown model, ..."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None):
        if path is not None:
            message = f"{path}:{line}: {message}" if line is not None else f"{path}: {message}"
        super().__init__(message)
        self.path = path
        self.line = line
