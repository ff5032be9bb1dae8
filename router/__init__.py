"""The 5-port colour router."""

from .router import Router

__all__ = ["Router"]
