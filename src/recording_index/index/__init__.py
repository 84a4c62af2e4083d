"""Index: the SQLite archive (schema, migrations, storage, full-text search in both languages).

Light by design: importing it loads neither the audio stack nor an HTTP client, so searching is fast
to start. `database` holds `Index`, `search` parses queries for FTS5, `chunking` cuts the units of search.
"""

from recording_index.index.database import Index

__all__ = ["Index"]
