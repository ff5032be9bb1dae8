"""The error a workload raises for a problem with the user's input."""

from __future__ import annotations

__all__ = ["WorkloadError"]


class WorkloadError(ValueError):
    """A problem with the user's workload input (file, tensor, shape); the message says what."""
