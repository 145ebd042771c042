"""The error a job reports as one line: every layer raises it, the entry points print it."""

from __future__ import annotations


class JobError(RuntimeError):
    """A job cannot proceed; the message is one line that says why."""
