"""The one error base of the lake.

Every error a user may see derives from :class:`LakeError`: its message says what is wrong,
naming the file, upload, column or argument and what was expected, so that reading it is
enough to fix the cause. ``code`` is machine-readable (a reason code such as
``file.missing_columns`` where one applies) and ``source`` names what the error is about
(a file, a contract, an upload). Callers catch this one class: the CLI prints the message
and exits 2, a job fails the upload with the code.
"""

from __future__ import annotations


class LakeError(Exception):
    """Base of every user-facing error: ``message``, a machine-readable ``code`` and the
    ``source`` it is about; shown as ``<source>: <message>``."""

    default_code = "lake.error"

    def __init__(self, message: str, code: str | None = None, source: str | None = None) -> None:
        self.message = message
        self.code = code or self.default_code
        self.source = source
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class FileError(LakeError):
    """A file cannot be used as a whole (missing, unreadable, its header does not match the
    contract); the upload fails alone with ``code`` and the rest of the batch goes on."""

    default_code = "file.unreadable"


class ConfigError(LakeError):
    """A setting (an environment variable, a lake-wide limit) is missing or malformed."""

    default_code = "config.invalid"
