"""What each reason code means and what to do about it, in plain words: one catalogue for the
CLI, the run report and the docs' tables (a test holds the docs and the codes the lake
produces to it).

* **upload codes** (``file.*``): why the upload check refused a file;
* **run codes** (``run.*``, ``engine.*``, ``quality.*``): why a run failed an upload;
* **row codes** (``<column>.<check>``, ``row.malformed``): why a row was quarantined; the
  text names the column.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reason:
    meaning: str  # what happened, in the reader's terms
    action: str  # what to do about it


UPLOAD_REASONS: dict[str, Reason] = {
    "file.not_found": Reason("the path is not a readable file",
                             "check the path and upload the file again"),
    "file.too_large": Reason("the file (or, for gzip, its content) is over the size limit",
                             "split it into smaller files, or raise the dataset's "
                             "max_upload_bytes"),
    "file.empty": Reason("the file holds no bytes, or only blank lines",
                         "upload the export again: this one holds no data"),
    "file.format": Reason("the file is not in the dataset's format (or a quoted field is "
                          "never closed, or a stray carriage return breaks a line)",
                          "export it again as the dataset's format (CSV or JSON Lines); the "
                          "message names the line"),
    "file.encoding": Reason("the file is not UTF-8 text",
                            "save or export it as UTF-8; the message names the first bad "
                            "byte's line and column"),
    "file.checksum": Reason("the bytes received are not the ones declared for the upload",
                            "send the same file again; if it changed, request a new upload"),
    "file.duplicate": Reason("the same bytes were accepted before",
                             "nothing to do if it is a resend; to load it again, reprocess "
                             "the earlier upload the message names"),
    "file.record_too_large": Reason("a record is longer than the contract allows",
                                    "fix that record (the message names its line), or raise "
                                    "the contract's max_record_bytes"),
    "file.missing_columns": Reason("the header lacks columns the contract requires",
                                   "add or rename the missing columns (the message lists "
                                   "them and the columns found)"),
    "file.duplicate_columns": Reason("the header names a column twice",
                                     "keep one column of each name"),
    "file.no_rows": Reason("the file has a header and no data rows",
                           "upload an export that holds rows"),
    "file.content_type": Reason("the declared content type is not one the dataset accepts",
                                "send it as text/csv, application/x-ndjson or "
                                "application/gzip"),
    "file.unsafe_name": Reason("the file name cannot be stored safely (a path separator, a "
                               "leading dot, control characters, too long)",
                               "rename the file and upload it again"),
    "file.unregistered": Reason("an object arrived in raw/ without an upload request",
                                "upload files through POST /uploads (or lake push)"),
    "file.changed": Reason("the file in the raw zone is no longer the bytes that were "
                           "accepted", "upload the file again"),
    "file.unreadable": Reason("the run could not read the file",
                              "look at the error the ledger records, then reprocess it"),
}

RUN_REASONS: dict[str, Reason] = {
    "run.count_mismatch": Reason("the run read another number of rows than the upload check "
                                 "counted", "reprocess it; if it fails again, report it with "
                                 "the file"),
    "run.disk_full": Reason("the disk filled up during the run",
                            "free space where the zones and Spark's folder are; the next "
                            "run retries it"),
    "run.interrupted": Reason("the run stopped while processing it (its process died or "
                              "was stopped)", "nothing: the next run retries it (a held "
                              "upload waits for lake reprocess)"),
    "run.conservation": Reason("the files written did not hold the rows counted; nothing "
                               "was published", "reprocess it"),
    "run.busy": Reason("another run of the dataset holds its run lock",
                       "wait for it to end (lake status shows what it processes), then run "
                       "again"),
    "run.nothing_to_process": Reason("no upload of the dataset waits for a run (accepted, or "
                                     "failed and due for a retry)",
                                     "upload files first (an upload the fast lane took is "
                                     "processed already)"),
    "run.not_run": Reason("an earlier batch of the run could not finish publishing",
                          "nothing: the next run processes it"),
    "run.publish_incomplete": Reason("publishing was interrupted after the commit point",
                                     "nothing: the next run of the dataset completes it"),
    "engine.not_reproduced": Reason("the DuckDB engine does not read this file exactly as "
                                    "the Spark job does", "nothing: the batch run (Spark) "
                                    "processes it"),
    "engine.resources": Reason("the DuckDB engine ran out of memory on it",
                               "nothing: the batch run (Spark) processes it; or raise "
                               "$LAKE_DUCKDB_MEMORY"),
    "quality.threshold": Reason("more of its rows failed than the contract's quality "
                                "threshold allows; nothing was published",
                                "fix the file (the quarantine reasons say what is wrong) or "
                                "the thresholds, then lake reprocess it"),
    "quality.warning": Reason("more of its rows failed than the contract's warn threshold; "
                              "it was published", "look at the quarantined rows and their "
                              "reasons in the run report"),
}

# Row codes by check: the text names the column.
ROW_REASONS: dict[str, Reason] = {
    "required": Reason("{column} is missing or empty", "fill in {column}"),
    "length": Reason("{column} is shorter or longer than allowed",
                     "shorten or complete {column}"),
    "format": Reason("{column} does not have the expected form",
                     "write {column} in the form the contract gives (a date as YYYY-MM-DD, "
                     "an e-mail as name@domain ...)"),
    "type": Reason("{column} is not a value of its type (a number, or a plain value where "
                   "an object or list was sent)",
                   "write {column} as a plain value of its type (digits for a number)"),
    "range": Reason("{column} is outside the allowed range",
                    "correct {column}: the contract gives its bounds"),
    "precision": Reason("{column} has more decimals than allowed",
                        "round {column} to the decimals the contract allows"),
    "enum": Reason("{column} is not one of the allowed values",
                   "use one of the values the contract lists for {column}"),
    "conflict": Reason("two rows share the same {column} with different content",
                       "keep one row per {column}: the file holds two different versions"),
    "pattern": Reason("{column} does not match the expected pattern",
                      "correct {column}"),
}
MALFORMED = Reason("the line is not a well-formed record (fields out of place, or not a "
                   "JSON object)", "fix the line: the quarantine zone keeps its raw text")


def explain(code: str) -> Reason | None:
    """The plain-words meaning of a reason code, or None when it is not one."""
    if code in UPLOAD_REASONS:
        return UPLOAD_REASONS[code]
    if code in RUN_REASONS:
        return RUN_REASONS[code]
    if code == "row.malformed":
        return MALFORMED
    column, dot, check = code.rpartition(".")
    row = ROW_REASONS.get(check) if dot and column else None
    if row is None:
        return None
    return Reason(row.meaning.format(column=column), row.action.format(column=column))


def what_to_do(code: str | None) -> str | None:
    """``<meaning>: <action>`` of a code, for a line under the code's message."""
    reason = explain(code) if code else None
    return f"{reason.meaning}; what to do: {reason.action}" if reason else None
