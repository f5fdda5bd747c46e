"""Where a run or a sweep point stands: the one place the status words are spelled.

A run's summary and a sweep's manifest hold these words as strings; `Status` is a `StrEnum`, so a
member compares equal to its word and is written to JSON as that word.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    PENDING = "pending"  # a sweep point whose run has not started
    RUNNING = "running"  # a session is training it, or one was killed before it could say
    COMPLETED = "completed"  # trained to its last step
    INTERRUPTED = "interrupted"  # stopped by a signal; resumable
    DIVERGED = "diverged"  # its loss left the finite numbers; the step is in its message
    FAILED = "failed"  # an error ended it


RESULTS = (Status.COMPLETED, Status.DIVERGED)  # the statuses whose run has an outcome a comparison counts
