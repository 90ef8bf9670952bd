"""The reader of each contract ``format``. The one module that knows every reader: readers
import :mod:`lib.sources.base`, never this module, so the imports run one way."""

from __future__ import annotations

from lib.contracts.contract import Contract
from lib.errors import LakeError
from lib.sources import csv_reader, jsonl_reader
from lib.sources.base import Reader

READERS: dict[str, Reader] = {
    "csv": Reader(csv_reader.read_header, csv_reader.read_upload, csv_reader.SESSION_CONF),
    "jsonl": Reader(jsonl_reader.read_header, jsonl_reader.read_upload,
                    jsonl_reader.SESSION_CONF),
}


def reader_for(contract: Contract) -> Reader:
    reader = READERS.get(contract.format)
    if reader is None:
        raise LakeError(f"no reader for format {contract.format!r}; readers: "
                        f"{', '.join(sorted(READERS))}", "contract.format", contract.ref)
    return reader
