"""Exceptions that carry a user-facing message.

Every error a user can cause by what they type (an unknown name, a malformed ratio,
a checkpoint that does not fit) is a :class:`TokbenchError`. The CLI prints its
message as one line and exits with status 2; library users catch it like any
``ValueError``.
"""

from __future__ import annotations

__all__ = [
    "TokbenchError", "UnknownNameError", "CheckpointError", "SpecError", "UnreachableError", "ResultsError",
    "OutputError", "TokbenchWarning",
]


class TokbenchError(ValueError):
    """Bad input from the user; the message says what was wrong and what is valid."""


class UnknownNameError(TokbenchError, KeyError):
    """A name that is not in a registry (method, backbone, ...)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(TokbenchError):
    """A checkpoint that is missing, unreadable, or does not fit the backbone."""


class SpecError(TokbenchError):
    """A malformed spec string, P-Ratio range or option value."""


class ResultsError(TokbenchError):
    """A results file or folder with no readable record (not JSONL written by ``tokbench run``)."""


class OutputError(TokbenchError):
    """An output path that cannot be written: a file where a folder must be, or the reverse."""


class UnreachableError(TokbenchError):
    """A method cannot reach the requested P-Ratio (a merging floor, RLT below 1/8).

    Raised from a method's ``__init__`` or ``setup``; the runner records the cell as
    ``unreachable`` with this message instead of silently clamping.
    """


class TokbenchWarning(UserWarning):
    """Something the user should know that does not stop the command; the CLI prints it as one
    ``tokbench: warning:`` line."""
