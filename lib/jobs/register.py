"""Partitions registered in the catalog when a run commits, so that new rows are queryable
without waiting for a crawler.

After a run publishes, every partition folder it wrote into (per zone: the clean and the
quarantine table of the dataset) is registered, and the table is created first when it does
not exist yet (the first upload of a dataset), exactly as the zone's crawler would create it:
the same columns in the files' order, with the Hive types a Glue crawler gives Parquet, the
partition keys as ``string``, the same location, SerDe and parameters. A crawl right after a
run therefore changes nothing. Registering is idempotent (a partition already there is
kept); the crawlers still create tables, evolve schemas (a column a new contract version
adds appears at the next crawl) and sweep.

Two catalogs: :class:`LocalRegistrar` (the local catalog, :mod:`lib.lake.catalog`) and
:class:`GlueRegistrar` (the Glue Data Catalog: ``GetTable``, ``CreateTable``,
``BatchCreatePartition`` with the table's storage descriptor). A registration that fails is
logged and left to the crawler: the rows are published either way.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from lib.contracts.contract import (
    CONTRACT_VERSION,
    ERRORS,
    INGESTED_AT,
    QUARANTINE_PARTITION,
    RAW_RECORD,
    SOURCE_FILE,
    SOURCE_RECORD,
    UPLOAD_ID,
    Contract,
)
from lib.lake.catalog import LocalCatalog, table_input
from lib.lake.paths import LakePaths, join

ZONES = ("clean", "quarantine")
# What the crawler definitions (crawlers/*.yaml) say, as the job's arguments pass it on.
DEFAULT_DATABASES = {"clean": "clean", "quarantine": "quarantine"}
_LINEAGE = [(UPLOAD_ID, "string"), (SOURCE_FILE, "string"), (INGESTED_AT, "timestamp"),
            (CONTRACT_VERSION, "string")]
_NEW_DATABASE = "created by a run that registered its partitions; the crawler describes it"
_GLUE_BATCH = 100  # BatchCreatePartition takes at most 100 partitions per call


def hive_type(col_type: object) -> str:
    """The Hive type a Glue crawler gives the Parquet column of a contract type."""
    name = col_type.name  # type: ignore[attr-defined]
    if name == "decimal":
        return f"decimal({col_type.precision},{col_type.scale})"  # type: ignore[attr-defined]
    return name  # string, int, bigint, date, timestamp: the same words


def table_columns(contract: Contract, zone: str) -> tuple[dict[str, str], tuple[str, ...]]:
    """(columns in the files' order -> Hive type, partition keys) of a zone's table."""
    if zone == "clean":
        cols = [(c.name, hive_type(c.type)) for c in contract.columns]
        cols += [(d.name, hive_type(d.type)) for d in contract.derived]
        keys = tuple(contract.partition_by)
    else:
        cols = [(c.name, "string") for c in contract.columns]
        cols += [(ERRORS, "array<string>"), (RAW_RECORD, "string"), (SOURCE_RECORD, "bigint")]
        keys = (QUARANTINE_PARTITION,)
    cols += _LINEAGE
    return {n: t for n, t in cols if n not in keys}, keys


@dataclass(frozen=True)
class Table:
    """One zone's table of a dataset, as its crawler defines it (:func:`tables` keys them
    by zone)."""

    database: str
    name: str
    columns: dict[str, str]
    partition_keys: tuple[str, ...]
    location: str
    parameters: dict[str, str]

    def input(self) -> dict:
        return table_input(self.name, self.columns, self.partition_keys, self.location,
                           self.parameters)


def tables(contract: Contract, paths: LakePaths, databases: Mapping[str, str],
           table_prefix: str = "") -> dict[str, Table]:
    ds = contract.dataset
    out = {}
    for zone in ZONES:
        columns, keys = table_columns(contract, zone)
        location = paths.clean_dataset(ds) if zone == "clean" else paths.quarantine_dataset(ds)
        out[zone] = Table(databases[zone], f"{table_prefix}{ds}", columns, keys,
                          location, {"classification": "parquet", "lake.crawler": zone,
                                     "lake.dataset": ds})
    return out


def partition_values(folder: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    """``order_date=2026-11-01`` (a path under the table, as written) -> its values."""
    parts = folder.split("/")
    if len(parts) != len(keys) or any("=" not in p for p in parts):
        raise ValueError(f"{folder!r} is not a partition folder of keys {list(keys)}")
    names = [p.split("=", 1)[0] for p in parts]
    if tuple(names) != keys:
        raise ValueError(f"{folder!r} is not a partition folder of keys {list(keys)}")
    return tuple(unquote(p.split("=", 1)[1]) for p in parts)


class Catalog(Protocol):
    """Where a run registers what it published: its name, the database of each zone and the
    prefix of table names (the crawler definitions'), and the registering itself."""

    name: str
    databases: Mapping[str, str]
    table_prefix: str

    def register(self, table: Table, partitions: Mapping[tuple[str, ...], str]) -> str: ...


@dataclass
class Registration:
    """What one run registered, per table (``clean.orders: +2 partition(s)``)."""

    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def register_published(catalog: Catalog, contract: Contract, paths: LakePaths,
                       written: Iterable[str], log: logging.Logger) -> Registration:
    """Register the partition folders ``written`` (``<zone>/<dataset>/<folder>``, as the run
    report lists them) in ``catalog``; a failure is logged, never raised."""
    result = Registration()
    by_table = tables(contract, paths, catalog.databases, catalog.table_prefix)
    wanted: dict[str, dict[tuple[str, ...], str]] = {zone: {} for zone in ZONES}
    for entry in written:
        zone, _, folder = entry.split("/", 2)
        table = by_table[zone]
        wanted[zone][partition_values(folder, table.partition_keys)] = \
            join(table.location, *folder.split("/"))
    for zone in ZONES:
        if not wanted[zone]:
            continue
        table = by_table[zone]
        try:
            what = catalog.register(table, wanted[zone])
        except Exception as exc:  # the rows are published: the crawler registers them later
            message = (f"{table.database}.{table.name}: partitions not registered in the "
                       f"{catalog.name} ({exc}); the next crawl of {zone} registers them")
            log.warning("%s", message)
            result.failed.append(message)
            continue
        log.info("registered in the %s: %s", catalog.name, what)
        result.done.append(what)
    return result


class LocalRegistrar:
    """The local catalog of a lake (:class:`lib.lake.catalog.LocalCatalog`)."""

    name = "local catalog"

    def __init__(self, catalog: LocalCatalog, databases: Mapping[str, str] = DEFAULT_DATABASES,
                 table_prefix: str = "") -> None:
        self.catalog, self.databases, self.table_prefix = catalog, databases, table_prefix

    def register(self, table: Table, partitions: Mapping[tuple[str, ...], str]) -> str:
        with self.catalog.transaction():
            created = self.catalog.table(table.database, table.name) is None
            if created:
                if table.database not in self.catalog.databases():
                    self.catalog.create_database(table.database, _NEW_DATABASE)
                self.catalog.create_table(table.database, table.name, table.columns,
                                          table.partition_keys, table.location,
                                          table.parameters)
            before = self.catalog.partitions(table.database, table.name)
            self.catalog.add_partitions(table.database, table.name, table.partition_keys,
                                        dict(partitions))
        return _described(table, created, len(set(partitions) - before))


class GlueRegistrar:
    """The Glue Data Catalog, through a boto3 ``glue`` client."""

    name = "Glue Data Catalog"

    def __init__(self, glue: Any, databases: Mapping[str, str],
                 table_prefix: str = "") -> None:
        self.glue, self.databases, self.table_prefix = glue, databases, table_prefix

    def register(self, table: Table, partitions: Mapping[tuple[str, ...], str]) -> str:
        created = False
        try:
            definition = self.glue.get_table(DatabaseName=table.database,
                                             Name=table.name)["Table"]
        except self.glue.exceptions.EntityNotFoundException:
            try:
                self.glue.create_table(DatabaseName=table.database, TableInput=table.input())
                created = True
            except self.glue.exceptions.AlreadyExistsException:
                pass  # another run created it between the two calls
            definition = self.glue.get_table(DatabaseName=table.database,
                                             Name=table.name)["Table"]
        sd = definition["StorageDescriptor"]
        items = sorted(partitions.items())
        added = 0
        for i in range(0, len(items), _GLUE_BATCH):
            inputs = []
            for values, location in items[i:i + _GLUE_BATCH]:
                psd = copy.deepcopy(sd)
                psd["Location"] = location
                inputs.append({"Values": list(values), "StorageDescriptor": psd})
            answer = self.glue.batch_create_partition(
                DatabaseName=table.database, TableName=table.name, PartitionInputList=inputs)
            errors = [e for e in answer.get("Errors", [])
                      if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
            if errors:
                detail = errors[0].get("ErrorDetail", {})
                raise RuntimeError(f"{len(errors)} partition(s) refused: "
                                   f"{detail.get('ErrorCode')}: {detail.get('ErrorMessage')}")
            added += len(inputs) - len(answer.get("Errors", []))
        return _described(table, created, added)


def _described(table: Table, created: bool, added: int) -> str:
    return (f"{table.database}.{table.name}: " + ("table created, " if created else "")
            + f"+{added} partition(s)")
