"""The search page: `recording-index serve` (a Starlette app over a read-only index)."""

from recording_index.web.app import create_app

__all__ = ["create_app"]
