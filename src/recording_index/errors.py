"""Errors that end the work on one recording, with a message a person can act on."""

from recording_index.redaction import printable, redact, redact_url


class RecordingIndexError(Exception):
    """Base class of this package's errors."""


class BadInputError(RecordingIndexError):
    """An input that will never work as it is (not media, no audio, empty): retrying cannot help.

    Its message is one line that names the input and the cause.
    """

    def __init__(self, source: str, cause: str):
        # What a URL carried to fetch it never reaches a message (nor the logs and the index after it).
        # Nor terminal escapes: a server's reason phrase or a page's link can hold them.
        source, cause = printable(redact(redact_url(source))), printable(redact(cause))
        super().__init__(f"{source}: {cause}")
        self.source = source
        self.cause = cause


class ModelUnavailableError(RecordingIndexError):
    """A Whisper model that cannot be had here, with what is missing and how to get it."""


class TranslationUnavailable(RecordingIndexError):
    """The configured translator cannot run here (no Argos package, a broken one)."""


class ConfigError(RecordingIndexError):
    """A settings or catalog file that is wrong, with the file, the field and the cause."""


class IndexBusyError(RecordingIndexError):
    """Another run holds the index."""


class DiskFullError(RecordingIndexError):
    """The index or its files could not be written for want of space: the run stops cleanly."""
