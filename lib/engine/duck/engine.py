"""The contract on a batch of uploads with DuckDB: read, validate, classify, and the two zones'
rows and the counts, in one process and without a JVM.

:func:`connect` opens a connection set up as the Spark job's session is (UTC, a memory limit
with spilling to a folder); :func:`enforce` runs the steps of :mod:`lib.engine.duck.enforce`
on the uploads of a batch: the validated rows in a temporary table (read once from the
files), the keys that repeat in another, and a view of the rows with their disposition;
:func:`clean_query` and :func:`quarantine_query` select one upload's rows of each zone from
them, its lineage added as literals. The tables live as long as the connection; they hold
what the writes need and no more (a record's line only where the quarantine needs it, no
lineage), so that a big batch stays within the memory limit instead of spilling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb

from lib.contracts.contract import ERRORS, SOURCE_RECORD, UPLOAD_ID, Contract
from lib.contracts.header import HeaderPlan
from lib.engine.duck import enforce as sql
from lib.engine.duck.csv_line import NotReproduced
from lib.engine.duck.derived import unproven_derived
from lib.engine.duck.read import LINE, UPLOAD, not_reproduced, read_csv, register
from lib.engine.duck.read_jsonl import read_jsonl
from lib.engine.duck.rules import ident

CLASSIFIED = "lake_classified"
READERS = ("csv", "jsonl")  # the formats this engine reads
READ_PARTITION = "_read_partition"  # the key of the run's counts: one read partition here


def connect(memory_limit: str = "1GB", temp_dir: Path | None = None,
            threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A connection for one run: UTC, at most ``memory_limit``, spilling under ``temp_dir``."""
    con = duckdb.connect(config={"memory_limit": memory_limit,
                                 **({"threads": threads} if threads else {})})
    con.execute("SET TimeZone = 'UTC'")
    # One file per partition and upload: keep every partition's file open while writing
    # (past the default 100, DuckDB closes files and starts new ones).
    con.execute("SET partitioned_write_max_open_files = 100000")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{str(temp_dir).replace(chr(39), chr(39) * 2)}'")
    register(con)
    return con


@dataclass(frozen=True)
class Input:
    """One upload of a batch, as the engine reads it."""

    upload_id: str
    path: Path  # the local file
    source_file: str  # the URI its rows carry as _source_file
    ingest_date: date
    plan: HeaderPlan
    multiline: bool | None


@dataclass
class Outcome:
    """Rows per (upload, reason codes) before duplicates are resolved (``counts``, in the
    shape :func:`lib.jobs.run._fill_counts` reads), per upload with repeats the rows in
    conflict and the duplicates (``repeated``), and the SQL of each upload's lineage
    columns (``lineage``: see :func:`lib.engine.duck.enforce.lineage`)."""

    counts: list[dict] = field(default_factory=list)
    repeated: dict[str, tuple[int, int]] = field(default_factory=dict)
    lineage: list[dict[str, str]] = field(default_factory=list)  # per upload, in batch order


def unsupported(contract: Contract) -> str | None:
    """Why the DuckDB engine does not run ``contract``, in a sentence (None: it does): a
    format it does not read, a partition column it does not write as Spark names it, or a
    derived expression not proven to mean the same."""
    if contract.format not in READERS:
        return (f"the DuckDB engine reads {' and '.join(sorted(READERS))} only; {contract.ref} "
                f"is {contract.format}")
    types = dict(sql.clean_columns(contract))
    timed = [p for p in contract.partition_by if types[p] == "TIMESTAMPTZ"]
    if timed:
        return f"{contract.ref} is partitioned by a timestamp ({timed[0]})"
    return unproven_derived(contract)


def enforce(con: duckdb.DuckDBPyConnection, contract: Contract, batch: Sequence[Input],
            ingested_at: datetime) -> Outcome:
    """Read every upload of ``batch`` and validate its rows into a temporary table, find the
    keys that repeat, and define the view :data:`CLASSIFIED` of the rows with their
    disposition, which the writes read; return the counts and each upload's lineage."""
    why = unsupported(contract)
    if why is not None:
        raise NotReproduced(f"{why}: run it with the Spark engine", source=contract.ref)
    if not batch:
        raise ValueError("enforce needs at least one upload")
    names = [f"lake_raw_{i}" for i in range(len(batch))]
    csv = contract.format == "csv"
    try:
        raws = [read_csv(con, name, i, up.path, up.source_file, up.plan, contract, up.multiline)
                if csv else read_jsonl(con, name, i, up.path, up.source_file, contract)
                for i, (name, up) in enumerate(zip(names, batch, strict=True))]
        raw = " UNION ALL ".join(f"({q})" for q in raws)
        # CSV: the quarantine's values as read come from each failed record's line; JSON
        # Lines: each field's text is kept (a line is not split into fields in SQL).
        con.execute(f"CREATE OR REPLACE TEMP TABLE lake_validated AS "
                    f"{sql.validate(contract, f'({raw})', line=LINE if csv else None)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE lake_groups AS "
                    f"{sql.groups(contract, 'lake_validated')}")
        if csv:
            _fetch_conflict_lines(con, contract, names)
    except duckdb.Error as exc:
        refused = not_reproduced(exc, batch[0].source_file if len(batch) == 1 else None)
        if refused is not None:
            raise refused from None
        raise
    finally:
        for name in names:
            con.execute(f"DROP VIEW IF EXISTS {ident(name + '_lines')}")
            con.execute(f"DROP TABLE IF EXISTS {ident(name + '_split')}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {CLASSIFIED} AS "
                f"{sql.classify(contract, 'lake_validated', 'lake_groups')}")
    out = Outcome(lineage=[sql.lineage(up.upload_id, up.source_file, ingested_at.isoformat(),
                                       contract.ref, str(up.ingest_date)) for up in batch])
    for upload, errors, n in con.execute(
            f"SELECT {UPLOAD}, {ident(ERRORS)}, count(*) FROM lake_validated "
            f"GROUP BY ALL ORDER BY ALL").fetchall():
        out.counts.append({UPLOAD_ID: batch[upload].upload_id, READ_PARTITION: 0,
                           ERRORS: list(errors), "count": int(n)})
    for upload, conflicting, duplicates in con.execute(f"""
            SELECT {UPLOAD}, sum(g_rows) FILTER (WHERE g_conflict),
                   sum(g_rows - 1) FILTER (WHERE NOT g_conflict)
            FROM lake_groups GROUP BY ALL""").fetchall():
        out.repeated[batch[upload].upload_id] = (int(conflicting or 0), int(duplicates or 0))
    return out


def _fetch_conflict_lines(con: duckdb.DuckDBPyConnection, contract: Contract,
                          names: Sequence[str]) -> None:
    """Give the valid rows in conflict their lines, which the quarantine needs (validation
    keeps a line only for the rows that failed), from each upload's lines while they last."""
    if not con.execute("SELECT count(*) FROM lake_groups WHERE g_conflict").fetchall()[0][0]:
        return
    con.execute(f"CREATE OR REPLACE TEMP TABLE lake_conflicts AS "
                f"{sql.conflicts(contract, 'lake_validated', 'lake_groups')}")
    record = ident(SOURCE_RECORD)
    for i, name in enumerate(names):
        con.execute(f"""
            UPDATE lake_validated v SET {ident(LINE)} = x.line
            FROM (SELECT c.{record} AS rec, l.line FROM lake_conflicts c
                  JOIN {ident(name + '_lines')} l ON l.ordinal = c.{record}
                  WHERE c.{UPLOAD} = {i}) x
            WHERE v.{UPLOAD} = {i} AND v.{record} = x.rec""")
    con.execute("DROP TABLE lake_conflicts")


def clean_query(contract: Contract, outcome: Outcome, index: int) -> str:
    """The clean rows of the batch's ``index``-th upload."""
    return sql.clean_rows(contract, CLASSIFIED, index, outcome.lineage[index])


def quarantine_query(contract: Contract, outcome: Outcome, index: int,
                     plan: HeaderPlan) -> str:
    """The quarantine rows of the batch's ``index``-th upload, read with ``plan`` (CSV: their
    values as read come from each record's line, by the plan's column positions; JSON
    Lines: each field's text as read is kept in the validated rows)."""
    positions = None  # JSON Lines: the fields' texts as read are kept
    if contract.format == "csv":
        where = {n: i + 1 for i, n in enumerate(plan.read_names)}
        positions = {c.name: where[c.name] if c.name in plan.matched else None
                     for c in contract.columns}
    return sql.quarantine_rows(contract, "lake_validated", "lake_groups", index,
                               outcome.lineage[index], positions)
