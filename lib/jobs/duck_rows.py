"""The DuckDB engine of a run (:mod:`lib.jobs.run`): the steps that touch rows, in this process,
without a JVM, on a local lake or, in the fast-lane Lambda, on S3 (:class:`lib.lake.s3fs.S3Fs`:
the batch's uploads are fetched to local scratch, the files written there and uploaded under
their final keys).

:class:`DuckRows` reads a batch's uploads and enforces the contract with
:mod:`lib.engine.duck`, then writes each upload's files into the zones with the layout and
the names of the Spark engine's files::

    <zone>/<dataset>/<k>=<v>/.../<upload_id>_<run_id>_duckdb-<n>.c000.snappy.parquet

DuckDB writes each upload's rows under the run's staging folder
(``<zone>/_staging/<dataset>/<run_id>/``, which the next run's recovery removes if this one
dies), partitioned by the contract's partition columns; each file is then moved into place
under its final name (a rename on the same disk; on S3, the files are staged on local
scratch and each is uploaded once, under its final key). Partition folder names are Spark's:
the same characters escaped (a space is not, a ``/`` is ``%2F``), an empty or missing
value is ``__HIVE_DEFAULT_PARTITION__``. The Parquet types are the Spark files' (decimals as
INT32/INT64/fixed bytes by precision, timestamps as INT64 microseconds in UTC, lists in the
three-level layout), so files of both engines sit in one partition.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import duckdb

from lib.contracts.contract import QUARANTINE_PARTITION, Contract
from lib.contracts.header import HeaderPlan
from lib.engine.duck import engine as duck
from lib.engine.duck.csv_line import NotReproduced
from lib.engine.duck.derived import derived_sql
from lib.engine.duck.rules import ident, lit
from lib.errors import LakeError
from lib.jobs.faults import crash_point
from lib.jobs.publish import PUBLISH_THREADS
from lib.jobs.run import Batch, Run
from lib.lake.localfs import LocalFs
from lib.lake.paths import join, local_path
from lib.lake.s3fs import S3Fs

LakeFs = LocalFs | S3Fs  # where the engine's files live: local disk, or S3 (the Lambda)
DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
ENGINE_RESOURCES = "engine.resources"


class EngineResources(LakeError):
    """The DuckDB engine ran out of memory or disk on a batch: not the data's fault (the
    upload fails with this code, and the batch run, with Spark, retries it)."""

    default_code = ENGINE_RESOURCES


@contextlib.contextmanager
def _resources(memory_limit: str) -> Iterator[None]:
    try:
        yield
    except duckdb.OutOfMemoryException as exc:
        raise EngineResources(
            f"the DuckDB engine ran out of memory (limit {memory_limit}, $LAKE_DUCKDB_MEMORY) "
            f"and could not spill enough to disk ({str(exc).splitlines()[0][:300]}); nothing "
            "of it was published: the batch run (Spark) processes it") from None
# Spark's ExternalCatalogUtils.escapePathName: these characters become %XX in a folder name.
_ESCAPED = frozenset([*map(chr, range(0x01, 0x20)), '"', "#", "%", "'", "*", "/", ":", "=",
                      "?", "\\", "\x7f", "{", "[", "]", "^"])


def spark_partition_value(text: str) -> str:
    """A partition value as Spark names its folder."""
    if text == "":
        return DEFAULT_PARTITION
    return "".join(f"%{ord(ch):02X}" if ch in _ESCAPED else ch for ch in text)


@dataclass
class DuckEnforced:
    """A batch enforced in DuckDB: the counts, and the classified rows in a temporary table."""

    rows: DuckRows
    counts: list[dict]
    repeated: dict[str, tuple[int, int]] = field(default_factory=dict)

    def write(self, run: Run, upload_ids: Sequence[str]) -> None:
        self.rows.write(run, upload_ids)


class DuckRows:
    """The DuckDB engine: what :func:`lib.jobs.run.process_uploads` asks of an engine."""

    name = "duckdb"

    def __init__(self, memory_limit: str = "1GB", temp_dir: Path | None = None,
                 threads: int | None = None, fs: LakeFs | None = None,
                 scratch: Path | None = None) -> None:
        self.fs: LakeFs = fs or LocalFs()
        self.memory_limit, self.temp_dir, self.threads = memory_limit, temp_dir, threads
        # Local disk for a lake that is not (S3, in the fast-lane Lambda): the batch's
        # uploads are fetched into it, and the files are written there before their upload.
        self.scratch = scratch
        self.con: duckdb.DuckDBPyConnection | None = None
        self.uploads: list[str] = []  # those of the batch being processed
        self.plans: dict[str, HeaderPlan] = {}  # how each of them was read
        self.outcome: duck.Outcome | None = None  # what enforcing the batch gave

    def prepare(self, contract: Contract) -> None:
        """Refuse, before any claim, a contract this engine does not run."""
        why = duck.unsupported(contract)
        if why is not None:
            raise NotReproduced(f"{why}: run it with --engine spark", source=contract.ref)
        derived_sql(contract)  # a derived expression that does not parse fails here

    def alive(self) -> bool:
        return True  # an error in DuckDB is an exception here, never a dead process

    @contextlib.contextmanager
    def batch(self, run: Run, batch: Batch) -> Iterator[DuckEnforced]:
        con = duck.connect(self.memory_limit, self.temp_dir, self.threads)
        self.con = con
        try:
            inputs = [duck.Input(up.upload_id, self._input(up.path), up.path, up.ingest_date,
                                 plan, up.multiline) for up, plan in batch]
            self.uploads = [up.upload_id for up, _ in batch]
            self.plans = {up.upload_id: plan for up, plan in batch}
            t0 = time.perf_counter()
            run.log.info("reading and validating %d upload(s) with DuckDB", len(batch))
            with _resources(self.memory_limit):
                outcome = self.outcome = duck.enforce(con, run.contract, inputs, run.started)
            run.log.info("read, validated and classified the rows in %.1fs",
                         time.perf_counter() - t0)
            yield DuckEnforced(self, outcome.counts, outcome.repeated)
        finally:
            self.con, self.outcome = None, None
            con.close()
            if self.scratch is not None:
                shutil.rmtree(self.scratch / "inputs", ignore_errors=True)

    def _scratch(self, uri: str, *sub: str) -> Path:
        if self.scratch is None:
            raise NotReproduced(f"{uri}: the DuckDB engine needs a local scratch folder for a "
                                "lake that is not on local disk")
        return self.scratch.joinpath(*sub)

    def _input(self, uri: str) -> Path:
        """The upload as a local file: itself on a local lake, else fetched into scratch."""
        path = local_path(uri)
        return path if path is not None else self.fs.fetch(uri, self._scratch(uri, "inputs"))

    def write(self, run: Run, upload_ids: Sequence[str]) -> None:
        with _resources(self.memory_limit):
            self._write(run, upload_ids)

    def _write(self, run: Run, upload_ids: Sequence[str]) -> None:
        assert self.con is not None and self.outcome is not None, "write runs inside batch()"
        contract, outcome = run.contract, self.outcome
        t0 = time.perf_counter()
        for upload in upload_ids:
            self._write_zone(run, upload, duck.clean_query(
                contract, outcome, self.uploads.index(upload)),
                run.paths.clean_dataset(run.dataset), contract.partition_by)
        crash_point("writing")
        for upload in upload_ids:
            self._write_zone(run, upload, duck.quarantine_query(
                contract, outcome, self.uploads.index(upload), self.plans[upload]),
                run.paths.quarantine_dataset(run.dataset), (QUARANTINE_PARTITION,))
        run.log.info("wrote the clean and the quarantined rows in %.1fs",
                     time.perf_counter() - t0)

    def _write_zone(self, run: Run, upload: str, query: str, dataset_uri: str,
                    partition_by: Sequence[str]) -> None:
        """One upload's rows of one zone: written by DuckDB under the run's staging folder,
        then each file moved into place under its final name."""
        assert self.con is not None
        zone_uri = dataset_uri.rsplit("/", 1)[0]
        stage_uri = join(run.paths.staging_root(zone_uri, run.dataset), run.run_id)
        stage = local_path(stage_uri) or self._scratch(stage_uri, "staging", run.run_id,
                                                       zone_uri.rsplit("/", 1)[-1])
        if stage.exists():
            shutil.rmtree(stage)
        stage.parent.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"COPY ({query}) TO {lit(str(stage))} (FORMAT parquet, COMPRESSION snappy, "
            f"PARTITION_BY ({', '.join(ident(k) for k in partition_by)}), "
            f"FILENAME_PATTERN 'part-{{i}}', FILE_EXTENSION 'snappy.parquet')")
        moves = []
        for path in sorted(stage.rglob("*.snappy.parquet")):
            folders = path.relative_to(stage).parts[:-1]
            values: Mapping[str, str] = dict(f.split("=", 1) for f in folders)
            n = path.name.removeprefix("part-").removesuffix(".snappy.parquet")
            moves.append((path, join(dataset_uri, *[
                f"{k}={spark_partition_value(unquote(values[k]))}"
                if values[k] != DEFAULT_PARTITION else f"{k}={DEFAULT_PARTITION}"
                for k in partition_by],
                f"{upload}_{run.run_id}_duckdb-{int(n):05d}.c000.snappy.parquet")))
        # Renames on local disk; on S3 uploads, several at once (one per partition).
        with ThreadPoolExecutor(PUBLISH_THREADS, thread_name_prefix="put") as pool:
            list(pool.map(lambda move: self.fs.put(*move), moves))
        shutil.rmtree(stage)
