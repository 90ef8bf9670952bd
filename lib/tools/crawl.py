"""The local crawl: apply a crawler definition (:mod:`lib.tools.crawlers`) to a local lake, into
the local catalog (:mod:`lib.lake.catalog`), the way the Glue crawler fills the Glue Data
Catalog. No Spark: footers are read with pyarrow.

For each target (one dataset folder of the crawler's zone):

1. **Scan** the folder: skip what the exclusions match, read the ``key=value`` partition
   folders, and merge the schema of the Parquet footers (pyarrow; no data is read) into
   Hive column types as a Glue crawler gives them for Parquet (``string``, ``int``,
   ``bigint``, ``decimal(p,s)``, ``timestamp``, ``date``, ``array<string>``...). Partition
   keys are ``string``, as the crawler types ``key=value`` folders such as
   ``order_date=2026-11-01``.
2. **Create or update** the EXTERNAL table (removing it never deletes data): new columns are
   added with UPDATE_IN_DATABASE or only logged with LOG; columns no file carries any more
   are logged and kept; a column whose type changed is reported as a conflict and keeps its
   type (a breaking change belongs in a new table, see :mod:`lib.contracts.evolution`).
3. **Register partitions**: every partition folder not yet in the catalog is added (all
   partitions read with the table's schema: ``InheritFromTable``); a registered partition
   whose folder is gone is dropped with DELETE_FROM_DATABASE, else logged.

A crawl with nothing new changes nothing: it is idempotent. CRAWL_NEW_FOLDERS_ONLY reads
footers of new partition folders only. Each target is crawled in one catalog transaction:
two crawls at once serialise per table, and the second finds the first's work done.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote

import pyarrow as pa
import pyarrow.parquet as pq

from lib.lake.catalog import CatalogError, LocalCatalog, TableInfo
from lib.lake.paths import LakePaths, join, local_path, to_uri
from lib.tools.crawlers import CrawlerDefinition

__all__ = ["CatalogError", "TableResult", "crawl", "hive_type", "scan_target"]

_PARTITION_DIR = re.compile(r"^([^=]+)=(.*)$")


# -- Parquet -> Hive types -------------------------------------------------------------------

def hive_type(t: pa.DataType) -> str:
    """The Hive type a Glue crawler gives a Parquet column of Arrow type ``t``."""
    simple = [
        (pa.types.is_string, "string"), (pa.types.is_large_string, "string"),
        (pa.types.is_boolean, "boolean"), (pa.types.is_int8, "tinyint"),
        (pa.types.is_int16, "smallint"), (pa.types.is_int32, "int"),
        (pa.types.is_int64, "bigint"), (pa.types.is_float32, "float"),
        (pa.types.is_float64, "double"), (pa.types.is_date32, "date"),
        (pa.types.is_timestamp, "timestamp"), (pa.types.is_binary, "binary"),
    ]
    for test, name in simple:
        if test(t):
            return name
    if pa.types.is_decimal(t):
        return f"decimal({t.precision},{t.scale})"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        inner = ",".join(f"{t.field(i).name}:{hive_type(t.field(i).type)}"
                         for i in range(t.num_fields))
        return f"struct<{inner}>"
    raise CatalogError(f"no Hive type for Parquet/Arrow type {t}")


# -- scanning a target -----------------------------------------------------------------------

def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Glue exclusion globs: ``**`` spans folders (``**/`` also matches none), ``*`` and
    ``?`` stay within one path component."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(f"^{out}$")


@dataclass
class TableScan:
    location: str
    partition_keys: tuple[str, ...] = ()
    partitions: dict[tuple[str, ...], str] = field(default_factory=dict)  # values -> URI
    columns: dict[str, str] = field(default_factory=dict)  # name -> Hive type, file order
    conflicts: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def scan_target(folder: Path, exclusions: Iterable[str],
                known_partitions: set[tuple[str, ...]] | None = None) -> TableScan:
    """Partition folders and the merged Parquet schema under ``folder``. With
    ``known_partitions`` (CRAWL_NEW_FOLDERS_ONLY), footers of those partitions are not read."""
    excluded = [_glob_regex(p) for p in exclusions]
    scan = TableScan(location=to_uri(folder))
    keys: tuple[str, ...] | None = None
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            full = Path(dirpath) / name
            rel = full.relative_to(folder).as_posix()
            if any(rx.match(rel) for rx in excluded):
                continue
            if not name.endswith(".parquet"):
                scan.skipped.append(f"{rel}: not a Parquet file")
                continue
            parts = rel.split("/")[:-1]
            matches = [_PARTITION_DIR.match(p) for p in parts]
            if not all(matches):
                scan.conflicts.append(f"{rel}: folder is not key=value; file not catalogued")
                continue
            file_keys = tuple(m.group(1) for m in matches if m)
            values = tuple(unquote(m.group(2)) for m in matches if m)
            if keys is None:
                keys = file_keys
            elif file_keys != keys:
                scan.conflicts.append(f"{rel}: partition keys {list(file_keys)} differ from "
                                      f"{list(keys)}; file not catalogued")
                continue
            # segment by segment: Path.as_uri() would escape '=' and Hadoop not find it
            scan.partitions.setdefault(values, join(scan.location, *parts))
            if known_partitions is not None and values in known_partitions:
                continue
            _merge_schema(scan, full, rel, set(file_keys))
    scan.partition_keys = keys or ()
    return scan


def _merge_schema(scan: TableScan, path: Path, rel: str, partition_keys: set[str]) -> None:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        scan.conflicts.append(f"{rel}: unreadable Parquet footer ({exc}); file not catalogued")
        return
    for f in schema:
        if f.name in partition_keys:
            continue
        try:
            t = hive_type(f.type)
        except CatalogError as exc:
            scan.conflicts.append(f"{rel}: column {f.name}: {exc}")
            continue
        before = scan.columns.setdefault(f.name, t)
        if before != t:
            scan.conflicts.append(f"{rel}: column {f.name} is {t} here but {before} in other "
                                  "files; kept as " + before)


# -- the crawl -------------------------------------------------------------------------------

@dataclass
class TableResult:
    table: str
    action: str  # created, updated, unchanged, no data
    columns_added: list[str] = field(default_factory=list)
    partitions_added: list[str] = field(default_factory=list)
    partitions_removed: list[str] = field(default_factory=list)
    logged: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)

    def describe(self) -> str:
        head = f"{self.table}: {self.action}"
        bits = []
        if self.action == "created":
            bits.append(f"{len(self.columns_added)} columns")
        elif self.columns_added:
            bits.append(f"+{len(self.columns_added)} column(s) {', '.join(self.columns_added)}")
        if self.partitions_added:
            bits.append(f"+{len(self.partitions_added)} partition(s)")
        if self.partitions_removed:
            bits.append(f"-{len(self.partitions_removed)} partition(s)")
        lines = [head + (f" ({'; '.join(bits)})" if bits else "")]
        lines += [f"    log: {m}" for m in self.logged]
        lines += [f"    conflict: {m}" for m in self.conflicts]
        return "\n".join(lines)


def _partition_name(keys: tuple[str, ...], values: tuple[str, ...]) -> str:
    return "/".join(f"{k}={quote(v, safe='')}" for k, v in zip(keys, values, strict=True))


def crawl(crawler: CrawlerDefinition, paths: LakePaths, catalog: LocalCatalog,
          logger: logging.Logger | None = None) -> list[TableResult]:
    """Apply ``crawler`` to the local lake ``paths`` into ``catalog`` (see the module
    docstring)."""
    log = logger or logging.getLogger(f"lake.crawl.{crawler.name}")
    zone_uri = getattr(paths, crawler.zone)
    zone = local_path(zone_uri)
    if zone is None:
        raise CatalogError(f"{zone_uri}: the local crawl reads a local lake; on AWS the Glue "
                           f"crawler {crawler.name!r} catalogues it")
    catalog.create_database(crawler.database, crawler.description)
    results = []
    for dataset in crawler.targets:
        with catalog.transaction():
            result = _crawl_target(catalog, crawler, dataset, zone / dataset)
        for line in result.describe().splitlines():
            log.info("%s", line.strip())
        results.append(result)
    return results


def _crawl_target(catalog: LocalCatalog, crawler: CrawlerDefinition, dataset: str,
                  folder: Path) -> TableResult:
    db, name = crawler.database, crawler.table(dataset)
    result = TableResult(f"{db}.{name}", "unchanged")
    existing = catalog.table(db, name)
    if existing is not None and existing.location != to_uri(folder):
        result.logged.append(f"table location was {existing.location}; re-created at "
                             f"{to_uri(folder)} (the lake root moved)")
        catalog.drop_table(db, name)
        existing = None
    if not folder.is_dir():
        result.action = "no data yet"
        return result
    known = (catalog.partitions(db, name) if existing is not None
             and crawler.recrawl_behavior == "CRAWL_NEW_FOLDERS_ONLY" else None)
    scan = scan_target(folder, crawler.exclusions, known)
    result.conflicts += scan.conflicts
    result.logged += scan.skipped
    if not scan.partitions:
        result.action = "no data yet"
        return result
    if existing is None:
        catalog.create_table(db, name, scan.columns, scan.partition_keys, scan.location, {
            "classification": "parquet", "lake.crawler": crawler.name, "lake.dataset": dataset,
        })
        result.action = "created"
        result.columns_added = list(scan.columns)
        registered: set[tuple[str, ...]] = set()
    else:
        if existing.partition_keys != scan.partition_keys:
            result.conflicts.append(
                f"partition keys in the files {list(scan.partition_keys)} differ from the "
                f"table's {list(existing.partition_keys)}; table left as it is (a change of "
                "partitioning needs a new table)")
            return result
        _update_columns(catalog, crawler, db, name, existing, scan, result)
        registered = catalog.partitions(db, name)
    new = {v: loc for v, loc in scan.partitions.items() if v not in registered}
    catalog.add_partitions(db, name, scan.partition_keys, new)
    result.partitions_added = [_partition_name(scan.partition_keys, v) for v in sorted(new)]
    gone = registered - set(scan.partitions)
    if gone:
        names = [_partition_name(scan.partition_keys, v) for v in sorted(gone)]
        if crawler.delete_behavior == "DELETE_FROM_DATABASE":
            catalog.drop_partitions(db, name, gone)
            result.partitions_removed = names
        else:
            result.logged.append(f"partition folder(s) gone, kept in the catalog "
                                 f"({crawler.delete_behavior}): {', '.join(names)}")
    if result.action == "unchanged" and (result.columns_added or new or result.partitions_removed):
        result.action = "updated"
    return result


def _update_columns(catalog: LocalCatalog, crawler: CrawlerDefinition, db: str, name: str,
                    existing: TableInfo, scan: TableScan, result: TableResult) -> None:
    added = {c: t for c, t in scan.columns.items() if c not in existing.columns}
    for c, t in scan.columns.items():
        if c in existing.columns and existing.columns[c] != t:
            result.conflicts.append(f"column {c} is {t} in the files but {existing.columns[c]} "
                                    "in the table; kept as it is (a type change needs a new "
                                    "table)")
    if added:
        if crawler.update_behavior == "UPDATE_IN_DATABASE":
            catalog.add_columns(db, name, added)
            result.columns_added = list(added)
        else:
            result.logged.append(f"new column(s) not added (update_behavior LOG): "
                                 f"{', '.join(added)}")
    if crawler.recrawl_behavior == "CRAWL_EVERYTHING":
        dropped = [c for c in existing.columns if c not in scan.columns]
        if dropped:
            result.logged.append(f"column(s) no file carries any more, kept in the table "
                                 f"({crawler.delete_behavior}): {', '.join(dropped)}")
