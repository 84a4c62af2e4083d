"""recording-index: French seminar recordings into a searchable SQLite archive.

Every stage is a plain function usable without Prefect; `Index` is the search library call.
"""

from recording_index.config import Settings, load_catalog, load_settings
from recording_index.errors import BadInputError, ConfigError, ModelUnavailableError, RecordingIndexError
from recording_index.index.database import Index
from recording_index.models import Chunk, Cue, Recording, SearchHit, Segment, Word

__all__ = ["Settings", "load_settings", "load_catalog", "Index", "Recording", "Segment", "Word", "Chunk", "Cue",
           "SearchHit", "BadInputError", "ConfigError", "ModelUnavailableError", "RecordingIndexError"]
