"""An S3 object's body as a Python stream (plain boto3 objects, no third-party package: the
upload Lambdas use it too)."""

from __future__ import annotations

import io
from typing import Any


class S3Stream(io.RawIOBase):
    """An S3 object's body as a raw stream, read in the chunks the caller asks for; never
    held in memory as a whole."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()
