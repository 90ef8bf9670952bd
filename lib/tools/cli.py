"""``lake``: the command line of the local lake.

    lake [--lake-root DIR] upload FILE... --dataset NAME [--max-bytes N]
    lake [--lake-root DIR] status [UPLOAD_ID] [--dataset NAME] [--status S] [--format table|json|ids]
    lake [--lake-root DIR] run JOB [--version N] [--input FILE ...]
    lake [--lake-root DIR] reprocess UPLOAD_ID [--version N]
    lake contract check [DATASET] [--file CONTRACT.yaml]
    lake [--lake-root DIR] crawl [NAME]
    lake [--lake-root DIR] catalog [--format text|json]
    lake [--lake-root DIR] query "SQL" | --named NAME [--param V ...] [--format table|csv|json]
    lake [--lake-root DIR] queries [--run] [--param NAME=VALUE ...] [--format ...]
    lake [--lake-root DIR] pipeline [--watch [--batch-size N] [--batch-window SECONDS]]
    lake jars [--s3a]
    lake infra generate [--check]
    lake package [--dist DIR]
    lake deploy --env ENV [--dry-run] [--region REGION] [--dist DIR]
    lake push FILE... --dataset NAME --api URL [--region REGION] [--wait SECONDS]
    lake dlq redrive --env ENV | --queue NAME [--to QUEUE] [--apply] [--max N]

``--lake-root`` defaults to ``$LAKE_ROOT`` or ``.lake``. ``run`` and ``reprocess`` call the
job's entry point in ``glue_jobs/<job>/v<N>/job.py`` in-process with the same Glue-style
arguments the job gets on AWS. ``crawl``, ``catalog``, ``query`` and ``pipeline`` use the
lake's local catalog (``<lake root>/_local/catalog.sqlite``), the local Glue Data Catalog;
``query`` runs on DuckDB. Neither starts a JVM, and any number may run at once.

Exit codes: 0 success; 1 some upload was rejected or failed, a breaking contract change, or
a crawl conflict; 2 the command could not run (usage, unknown dataset / upload / table, a
bad query, another run in progress): every such error is a :class:`~lib.errors.LakeError`,
printed as ``lake: error: <message>``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lib.contracts.contract import (
    Contract,
    available_contracts,
    load_contract,
    load_contract_file,
)
from lib.contracts.header import printable
from lib.contracts.reasons import what_to_do
from lib.errors import LakeError
from lib.lake.catalog import LocalCatalog
from lib.lake.paths import LakePaths, local_path, to_uri
from lib.ledger.base import Ledger
from lib.ledger.records import ACCEPTED, PENDING, STATUSES, UploadRecord
from lib.ledger.sqlite import open_ledger
from lib.tools.progress import tracking
from lib.tools.query import DEFAULT_MEMORY_LIMIT as QUERY_MEMORY_LIMIT
from lib.tools.query import DEFAULT_TIMEOUT_S as QUERY_TIMEOUT_S
from lib.tools.query import FORMATS as QUERY_FORMATS
from lib.tools.watch import DEFAULT_BATCH_SIZE, DEFAULT_BATCH_WINDOW_S, DEFAULT_POLL_S
from lib.upload.checks import human_bytes, max_upload_bytes, upload_limit

# What only some commands need (Spark, boto3, the console, the AWS tooling) is imported by
# those commands: `lake query` and `lake crawl` start without a JVM in a fraction of a second.

class CliError(LakeError):
    """A command cannot run as given (an unknown job, dataset or crawler; bad options)."""

    default_code = "cli.usage"


def _lake_dir(args: argparse.Namespace) -> Path:
    root = local_path(to_uri(args.lake_root))
    if root is None:
        raise CliError(f"--lake-root {args.lake_root}: the local lake needs a folder")
    return root


def _ledger(args: argparse.Namespace) -> Ledger:
    return open_ledger(_lake_dir(args))


def _upload(args: argparse.Namespace, dataset: str, files: Sequence[str]) -> list[UploadRecord]:
    """Check and land files, printing one line per file."""
    from lib.upload.landing import upload_file

    known = available_contracts()
    if dataset not in known:
        raise CliError(f"unknown dataset {dataset!r}; known datasets: "
                       f"{', '.join(sorted(known)) or '(none)'}")
    not_files = [f"{printable(n)} ({'a folder' if Path(n).is_dir() else 'no such file'})"
                 for n in files if not Path(n).is_file()]
    if not_files:  # a mistyped name is the user's slip, not an upload to reject for good
        raise CliError(f"not a file: {', '.join(not_files)}; nothing was uploaded or "
                       "recorded (give the paths of the files to upload)")
    contract = load_contract(dataset)
    ledger = _ledger(args)
    paths = LakePaths.from_root(_lake_dir(args))
    records = []
    with tracking(f"lake upload --dataset {dataset}", logger=None) as update:
        for i, name in enumerate(files, start=1):
            size = Path(name).stat().st_size if Path(name).is_file() else 0
            update(f"checking {printable(name)} ({i}/{len(files)}, {human_bytes(size)})")
            r = upload_file(Path(name), contract, ledger, paths,
                            max_bytes=upload_limit(contract, args.max_bytes))
            records.append(r)
            _print_upload(r, name)
    return records


def _print_upload(r: UploadRecord, name: str) -> None:
    line = f"{r.upload_id}  {r.status:<8}  {printable(name)}"
    if r.status == ACCEPTED:
        line += f"  ({human_bytes(r.size_bytes)})"
        line += "".join(f"\n    warning: {w}" for w in r.warnings)
    else:
        line += f"\n    {r.reason_code}: {r.reason}"
        todo = what_to_do(r.reason_code)
        if todo:
            line += f"\n    ({todo})"
    print(line, flush=True)


def cmd_upload(args: argparse.Namespace) -> int:
    records = _upload(args, args.dataset, args.files)
    code = 0 if all(r.status == ACCEPTED for r in records) else 1
    if args.process:
        code = max(code, _fast_lane(args, args.dataset, records))
    return code


def _fast_lane(args: argparse.Namespace, dataset: str, records: Sequence[UploadRecord]) -> int:
    """Send the accepted uploads at or under the dataset's fast-lane limit through the
    fast lane (:mod:`lib.jobs.fast_lane`); the larger ones wait for the batch run."""
    from lib.jobs.fast_lane import fast_lane_limit, route, run_fast_lane
    from lib.tools.job_versions import job_versions

    versions = job_versions().get(dataset)
    if not versions:
        raise CliError(f"dataset {dataset!r} has no job in glue_jobs/: nothing to process with")
    version = versions[-1]  # the dataset's current job, as a batch run would take
    contract = load_contract(dataset, version)
    routed = route(records, contract)
    limit = fast_lane_limit(contract)
    for r in routed.batch:
        why = ("the fast lane is off for this dataset" if limit == 0
               else f"over the fast lane's {human_bytes(limit)}")
        print(f"{r.upload_id}  waits for the batch run ({why}): lake pipeline, or lake run "
              f"{dataset}", flush=True)
    if not routed.fast:
        return 0
    with tracking(f"fast lane {dataset}_v{version} (DuckDB)") as update:
        update(f"processing {len(routed.fast)} upload(s)")
        code = run_fast_lane(contract, version, str(_lake_dir(args)), _ledger(args),
                             [r.upload_id for r in routed.fast])
    if code is None:
        print(f"another run of {dataset} is in progress: the upload(s) stay ACCEPTED for the "
              "next run (lake pipeline, or lake run)", file=sys.stderr)
        return 1
    return code


def _run_job(args: argparse.Namespace, job: str, version: int | None,
             upload_ids: Sequence[str] | None) -> int:
    from lib.jobs.args import job_argv
    from lib.tools.job_versions import resolve_job

    version, module = resolve_job(job, version)
    argv = job_argv(job, version, args.lake_root, upload_ids)
    if getattr(args, "engine", "spark") == "duckdb":
        from lib.jobs.duck_entry import run_duck_job

        with tracking(f"job {job}_v{version} (DuckDB)") as update:
            update("running")
            return int(run_duck_job(getattr(module, "DATASET", job), version, argv))
    with tracking(f"job {job}_v{version}") as update:
        update("starting Spark")
        return int(module.main(argv))


def engine_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--engine", choices=("spark", "duckdb"), default="spark",
                        help="spark: the Glue job's engine (default); duckdb: the same contract "
                             "in this process, no JVM, for uploads one machine holds (CSV)")


def cmd_run(args: argparse.Namespace) -> int:
    from lib.tools.job_versions import resolve_job

    if not args.input:
        return _run_job(args, args.job, args.version, None)
    _, module = resolve_job(args.job, args.version)  # fail on a bad job before landing files
    dataset = getattr(module, "DATASET", args.job)
    records = _upload(args, dataset, args.input)
    accepted = [r.upload_id for r in records if r.status == ACCEPTED]
    if not accepted:
        print("no file was accepted; nothing to process", file=sys.stderr)
        return 1
    code = _run_job(args, args.job, args.version, accepted)
    return code or (1 if len(accepted) < len(records) else 0)


def cmd_reprocess(args: argparse.Namespace) -> int:
    record = _ledger(args).get(args.upload_id)
    return _run_job(args, record.dataset, args.version, [record.upload_id])


def _catalog(args: argparse.Namespace) -> LocalCatalog:
    """The lake's local catalog (the local Glue Data Catalog), ``<lake root>/_local``."""
    return LocalCatalog.for_lake(_lake_dir(args))


def _crawl(args: argparse.Namespace, names: Sequence[str] | None) -> int:
    from lib.tools.crawl import crawl
    from lib.tools.crawlers import load_crawlers

    crawlers = load_crawlers()
    if names:
        unknown = [n for n in names if n not in crawlers]
        if unknown:
            raise CliError(f"unknown crawler {unknown[0]!r}; crawlers: "
                           f"{', '.join(sorted(crawlers))}")
    catalog = _catalog(args)
    paths = LakePaths.from_root(_lake_dir(args))
    conflicts = 0
    for name in names or sorted(crawlers):
        print(f"crawler {name} -> database {crawlers[name].database}", flush=True)
        for result in crawl(crawlers[name], paths, catalog):
            print("  " + result.describe().replace("\n", "\n  "), flush=True)
            conflicts += len(result.conflicts)
    return 1 if conflicts else 0


def cmd_crawl(args: argparse.Namespace) -> int:
    return _crawl(args, [args.name] if args.name else None)


def cmd_catalog(args: argparse.Namespace) -> int:
    """What the local catalog holds: databases, tables with their columns, partitions."""
    catalog = _catalog(args)
    if args.format == "json":
        print(json.dumps([catalog.get_table(t.database, t.name) for t in catalog.tables()],
                         indent=2))
    else:
        print(catalog.describe())
    return 0


def _named_params(values: Sequence[str]) -> dict[str, str]:
    out = {}
    for v in values:
        if "=" not in v:
            raise CliError(f"--param {v!r}: named queries take --param NAME=VALUE")
        k, _, val = v.partition("=")
        out[k] = val
    return out


def cmd_query(args: argparse.Namespace) -> int:
    from lib.tools.query import format_result, load_named_queries, run_query

    if bool(args.sql) == bool(args.named):
        raise CliError("give either a SQL query or --named NAME")
    if args.named:
        queries = load_named_queries()
        if args.named not in queries:
            raise CliError(f"unknown named query {args.named!r}; named queries: "
                           f"{', '.join(sorted(queries))}")
        q = queries[args.named]
        sql, params = q.sql, q.bind(_named_params(args.param))
    else:
        sql, params = args.sql, list(args.param)
    result = run_query(_catalog(args), sql, params, max_rows=args.max_rows,
                       timeout_s=args.timeout, memory_limit=args.memory_limit)
    print(format_result(result, args.format))
    if result.truncated:
        print(f"lake: only the first {args.max_rows} rows are shown (--max-rows)",
              file=sys.stderr)
    return 0


def cmd_queries(args: argparse.Namespace) -> int:
    from lib.tools.query import format_result, load_named_queries, run_query

    queries = load_named_queries()
    if not args.run:
        for q in queries.values():
            params = f"  (--param {' '.join(dict.fromkeys(q.parameters))})" if q.parameters else ""
            print(f"{q.name}{params}\n    {q.description}")
        return 0
    values = _named_params(args.param)
    catalog = _catalog(args)
    for q in queries.values():
        print(f"== {q.name}: {q.description}")
        result = run_query(catalog, q.sql, q.bind(values), max_rows=args.max_rows,
                           timeout_s=args.timeout, memory_limit=args.memory_limit)
        print(format_result(result, args.format) + "\n", flush=True)
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    """What the scheduled workflow does on AWS: each dataset with pending uploads runs its
    current job version, then the crawlers run, then a summary. With ``--watch``: what the
    event-driven workflow does (:mod:`lib.tools.watch`)."""
    if args.watch:
        return _watch(args)
    from lib.tools.job_versions import job_versions

    ledger = _ledger(args)
    jobs = job_versions()
    ran: list[tuple[str, str, int, list[str]]] = []
    for dataset in sorted(available_contracts()):
        pending = [r.upload_id for r in ledger.find(dataset, PENDING)]
        if not pending:
            print(f"== {dataset}: no pending uploads", flush=True)
            continue
        if dataset not in jobs:
            print(f"== {dataset}: {len(pending)} pending upload(s) but no job in glue_jobs/",
                  flush=True)
            ran.append((dataset, "-", 2, pending))
            continue
        version = jobs[dataset][-1]
        print(f"== {dataset}: {len(pending)} pending upload(s) -> job {dataset} v{version}",
              flush=True)
        code = _run_job(args, dataset, version, None)
        ran.append((dataset, f"{dataset}_v{version}", code, pending))
    print("== crawlers", flush=True)
    crawl_code = _crawl(args, None)
    print("== pipeline summary")
    rows = []
    for dataset, job, code, ids in ran:
        recs = [ledger.get(u) for u in ids]
        total = {k: sum(getattr(r, k) or 0 for r in recs)
                 for k in ("rows_read", "clean", "quarantined", "duplicates_removed")}
        rows.append({"dataset": dataset, "job": job, "uploads": str(len(ids)),
                     **{k: str(v) for k, v in total.items()},
                     "result": "ok" if code == 0 else f"exit {code}: "
                     + ", ".join(sorted({r.status for r in recs}))})
    if rows:
        print(format_table(rows, _PIPELINE_COLUMNS))
    else:
        print("no dataset had pending uploads; catalog refreshed")
    print("crawlers: " + ("ok" if crawl_code == 0 else "conflicts (see above)"))
    return 1 if crawl_code or any(code for *_, code, _ in ran) else 0


def _watch(args: argparse.Namespace) -> int:
    from lib.jobs.local_spark import local_spark_session
    from lib.jobs.runtime import local_work_dir
    from lib.tools.job_versions import job_versions
    from lib.tools.watch import watch

    jobs = job_versions()
    datasets = sorted(d for d in available_contracts() if d in jobs)
    root = _lake_dir(args)

    def run(dataset: str) -> int:
        code = _run_job(args, dataset, jobs[dataset][-1], None)
        crawled = _crawl(args, None)
        return code or crawled

    def start_spark() -> None:
        root.mkdir(parents=True, exist_ok=True)
        local_spark_session(local_work_dir(to_uri(root)), app_name="lake-watch")

    try:
        return watch(_ledger(args), datasets, run, size=args.batch_size,
                     window=args.batch_window, poll=args.poll,
                     say=lambda line: print(line, flush=True), prepare=start_spark)
    except ValueError as exc:
        raise CliError(f"lake pipeline --watch: {exc}") from None


def cmd_contract_check(args: argparse.Namespace) -> int:
    """Compatibility of consecutive contract versions (or of a candidate file against the
    bundled version before it), and which engines run each version. Exit 1 when a change
    breaks the shared tables."""
    from lib.contracts.evolution import check_compatible, check_dataset
    from lib.tools.expressions import expression_problems

    known = available_contracts()
    results = []
    if args.file:
        new = load_contract_file(args.file)  # refuses what the contract parser refuses
        problems = expression_problems(new)
        for problem in problems:
            print(problem)
        if not problems:
            print(engines_line(new))
        older = [v for v in known.get(new.dataset, ()) if v < new.version]
        if not older:
            print(f"{new.ref}: no earlier bundled version of {new.dataset!r} to compare with")
            return 1 if problems else 0
        results.append(check_compatible(load_contract(new.dataset, older[-1]), new))
        if problems:
            for r in results:
                print(r.describe())
            return 1
    else:
        datasets = [args.dataset] if args.dataset else sorted(known)
        for ds in datasets:
            if ds not in known:
                raise CliError(f"unknown dataset {ds!r}; known datasets: "
                               f"{', '.join(sorted(known))}")
            pairs = check_dataset(ds)
            if not pairs:
                print(f"{ds}/{known[ds][0]}: only one version; nothing to compare")
            results += pairs
            for version in known[ds]:
                print(engines_line(load_contract(ds, version)))
    for r in results:
        print(r.describe())
    return 0 if all(r.ok for r in results) else 1


def engines_line(contract: Contract) -> str:
    """Which engines run ``contract``: both, or the Spark engine only and why."""
    from lib.engine.duck.engine import unsupported

    why = unsupported(contract)
    if why is None:
        return f"{contract.ref}: runs on both engines (spark, duckdb), with the same results"
    return (f"{contract.ref}: runs on the Spark engine only ({why}); "
            f"lake run {contract.dataset} --engine duckdb refuses it before claiming an upload")


_STATUS_COLUMNS = ("upload_id", "dataset", "status", "original_name", "size", "received_at",
                   "rows_read", "clean", "quarantined", "duplicates_removed", "reason")
_PIPELINE_COLUMNS = ("dataset", "job", "uploads", "rows_read", "clean", "quarantined",
                     "duplicates_removed", "result")
_HEADINGS = {"job": "JOB", "uploads": "UPLOADS", "result": "RESULT",
             "upload_id": "UPLOAD", "dataset": "DATASET", "status": "STATUS",
             "original_name": "FILE", "size": "SIZE", "received_at": "RECEIVED",
             "rows_read": "READ", "clean": "CLEAN", "quarantined": "QUARANTINED",
             "duplicates_removed": "DUPLICATES", "reason": "REASON / ERROR"}


def _row(r: UploadRecord) -> dict[str, str]:
    def n(v: int | None) -> str:
        return "-" if v is None else str(v)

    return {"upload_id": r.upload_id, "dataset": r.dataset, "status": r.status,
            "original_name": r.original_name, "size": human_bytes(r.size_bytes),
            "received_at": r.received_at[:19].replace("T", " "),
            "rows_read": n(r.rows_read), "clean": n(r.clean), "quarantined": n(r.quarantined),
            "duplicates_removed": n(r.duplicates_removed),
            "reason": r.reason_code or r.error_code or ""}


def format_table(rows: list[dict[str, str]], columns: Sequence[str]) -> str:
    rows = [{c: printable(r[c]) for c in columns} for r in rows]  # one line per row
    widths = {c: max([len(_HEADINGS[c])] + [len(r[c]) for r in rows]) for c in columns}
    lines = ["  ".join(_HEADINGS[c].ljust(widths[c]) for c in columns).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
    return "\n".join(lines)


def cmd_infra_generate(args: argparse.Namespace) -> int:
    from lib.tools.infra import TEMPLATE_PATH, check, generate

    if args.check:
        stale = check()
        print(stale or f"{TEMPLATE_PATH.name} is current")
        return 1 if stale else 0
    text = generate()
    changed = not TEMPLATE_PATH.is_file() or TEMPLATE_PATH.read_text(encoding="utf-8") != text
    TEMPLATE_PATH.write_text(text, encoding="utf-8")
    print(f"{'wrote' if changed else 'unchanged'} {TEMPLATE_PATH}")
    return 0


def cmd_package(args: argparse.Namespace) -> int:
    from lib.tools.packaging import build

    package = build(Path(args.dist).resolve())
    print(f"release {package.release}: {len(package.artifacts)} artifacts in {package.dist}")
    for art in package.artifacts:
        print(f"  {art.key}  ({human_bytes(art.path.stat().st_size)}, sha256 {art.sha256[:12]})")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from lib.tools.deploy import deploy, load_env

    cfg = load_env(args.env, region=args.region)
    return deploy(cfg, Path(args.dist).resolve(), args.dry_run, sys.stdout)


def cmd_push(args: argparse.Namespace) -> int:
    import boto3

    from lib.tools.push import UploadApi, push

    api = UploadApi(args.api, boto3.session.Session(region_name=args.region))
    worst = 0
    for name in args.files:
        result = push(api, args.dataset, Path(name), wait=args.wait)
        r = result.record
        line = f"{result.upload_id}  {result.status:<8}  {name}"
        if r.get("reason_code"):
            line += f"\n    [{r['reason_code']}] {r.get('reason')}"
        elif result.status == "RECEIVED":
            line += f"  (not checked yet after {args.wait:g}s; lake status " \
                    f"--ledger-table ... {result.upload_id})"
        print(line, flush=True)
        worst = max(worst, 1 if result.status == "REJECTED" else 0)
    return worst


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    import boto3

    from lib.tools.deploy import load_env
    from lib.tools.dlq import plan_redrive, redrive

    queue = args.queue
    if queue is None:
        cfg = load_env(args.env, region=args.region)
        queue, region = f"{cfg.project}-{cfg.env}-uploads-dlq", cfg.region or args.region
    else:
        region = args.region
    sqs = boto3.client("sqs", region_name=region)
    plan = plan_redrive(sqs, queue, args.to)
    print(f"dead-letter queue: {plan.dlq_url}\nmove to:           {plan.target_url}\n"
          f"waiting:           {plan.waiting} message(s)")
    for item in plan.sample:
        print(f"  {item}")
    if not args.apply:
        print("dry run: nothing moved; fix the cause (see the validator's log), then run "
              "again with --apply")
        return 0
    moved = redrive(sqs, plan, args.max)
    print(f"moved {moved} message(s) back to {plan.target_url}")
    return 0


def cmd_jars(args: argparse.Namespace) -> int:
    from lib.tools.jars import build_protocol, fetch

    built = build_protocol()
    print(f"{built}  ({human_bytes(built.stat().st_size)}, compiled from jvm/)")
    if args.s3a:
        for path in fetch(say=lambda line: print(line, flush=True)):
            print(f"{path}  ({human_bytes(path.stat().st_size)}, SHA-256 checked)")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from lib.tools.console.app import serve

    serve(Path(args.lake_root), host=args.host, port=args.port, max_bytes=args.max_bytes,
          expose=args.expose, allow_hosts=args.allow_host, fast_lane=not args.no_fast_lane)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    if args.ledger_table:
        from lib.ledger.dynamo import DynamoLedger

        ledger: Ledger = DynamoLedger(args.ledger_table)
    else:
        ledger = _ledger(args)
    if args.upload_id:
        r = ledger.get(args.upload_id)
        history = ledger.history(r.upload_id)
        if args.format == "json":
            print(json.dumps({**r.to_dict(), "history": [vars(h) for h in history]}, indent=2))
            return 0
        for key, value in r.to_dict().items():
            if value not in (None, "", []):
                print(f"{key + ':':<20}{value}")
        todo = what_to_do(r.error_code if r.status == "FAILED" else r.reason_code)
        if todo:
            print(f"{'what it means:':<20}{todo}")
        print("history:")
        for h in history:
            print(f"  {h.at[:23].replace('T', ' ')}  {h.from_status or '-':<10} -> "
                  f"{h.to_status:<10}  {h.note or ''}".rstrip())
        return 0
    if args.dataset and args.dataset not in available_contracts():
        raise CliError(f"unknown dataset {args.dataset!r}; known datasets: "
                       f"{', '.join(sorted(available_contracts())) or '(none)'}")
    records = ledger.find(args.dataset, args.status and [args.status])
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in records], indent=2))
    elif args.format == "ids":
        print("\n".join(r.upload_id for r in records))
    elif not records:
        print("no uploads" + (f" for dataset {args.dataset!r}" if args.dataset else ""))
    else:
        print(format_table([_row(r) for r in records], _STATUS_COLUMNS))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lake", description="Upload files to the local lake, "
                                     "run its Glue jobs and follow every upload.")
    parser.add_argument("--lake-root", default=os.environ.get("LAKE_ROOT", ".lake"),
                        help="lake root folder or URI (default: $LAKE_ROOT or .lake)")
    sub = parser.add_subparsers(dest="command", required=True)

    def max_bytes(p: argparse.ArgumentParser) -> None:
        p.add_argument("--max-bytes", type=int, default=None, metavar="N",
                       help="size limit per file (default: $LAKE_MAX_UPLOAD_BYTES or 1 GiB; a "
                       "contract's max_upload_bytes lowers it for its dataset)")

    up = sub.add_parser("upload", help="check files and land the accepted ones in the raw zone")
    up.add_argument("files", nargs="+", metavar="FILE",
                    help="CSV or JSON Lines files (gzip when the name ends in .gz)")
    up.add_argument("--dataset", required=True, help="dataset the files belong to, e.g. orders")
    up.add_argument("--process", action="store_true",
                    help="process the accepted uploads at once through the fast lane (the "
                    "DuckDB engine, no JVM; uploads up to the dataset's fast_lane_max_bytes, "
                    "64 MiB by default): queryable when it ends; larger ones wait for the "
                    "batch run")
    max_bytes(up)
    up.set_defaults(func=cmd_upload)

    sv = sub.add_parser("serve", help="the lake console: uploads by drag and drop with live "
                        "progress, the ledger, on this machine")
    sv.add_argument("--host", default="127.0.0.1",
                    help="address to bind (default 127.0.0.1: this machine only; another "
                    "address needs --expose)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    sv.add_argument("--expose", action="store_true",
                    help="allow a --host that other machines can reach (the console has no "
                    "login: put a reverse proxy with authentication in front of it)")
    sv.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                    help="a host name requests may address besides the bound address (e.g. "
                    "the proxy's public name); repeatable (default: none)")
    sv.add_argument("--no-fast-lane", action="store_true",
                    help="leave accepted uploads for \"Process now\" or the batch run instead "
                    "of processing the small ones at once through the fast lane")
    max_bytes(sv)
    sv.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="show the upload ledger, or one upload's history")
    st.add_argument("upload_id", nargs="?", help="one upload: its record and history")
    st.add_argument("--dataset", help="only this dataset")
    st.add_argument("--status", choices=STATUSES, help="only uploads in this status")
    st.add_argument("--format", choices=("table", "json", "ids"), default="table",
                    help="table (default), json, or ids: one upload id per line, oldest "
                    "first")
    st.add_argument("--ledger-table", default=os.environ.get("LAKE_LEDGER_TABLE"),
                    help="read a deployed lake's DynamoDB ledger instead of the local one "
                    "(default: $LAKE_LEDGER_TABLE), e.g. lake-dev-ledger")
    st.set_defaults(func=cmd_status)

    run = sub.add_parser("run", help="run a job on the dataset's pending uploads")
    run.add_argument("job", help="job name, e.g. orders")
    run.add_argument("--version", type=int, help="job version (default: the latest)")
    run.add_argument("--input", nargs="+", metavar="FILE",
                     help="upload these files first (same checks as `lake upload`) and process "
                          "only them (default: every ACCEPTED or FAILED upload of the dataset)")
    max_bytes(run)
    engine_option(run)
    run.set_defaults(func=cmd_run)

    rp = sub.add_parser("reprocess", help="process one upload again, replacing its rows")
    rp.add_argument("upload_id", help="the upload, e.g. u20261122-3f2a9c1b7d4e (lake status)")
    rp.add_argument("--version", type=int, help="job version (default: the latest)")
    engine_option(rp)
    rp.set_defaults(func=cmd_reprocess)

    ct = sub.add_parser("contract", help="dataset contracts")
    ct_sub = ct.add_subparsers(dest="contract_command", required=True)
    cc = ct_sub.add_parser("check", help="check that each contract version can share its "
                           "tables with the one before (additive, nullable changes only)")
    cc.add_argument("dataset", nargs="?", help="only this dataset (default: all)")
    cc.add_argument("--file", help="a candidate contract file, checked against the bundled "
                    "version before it")
    cc.set_defaults(func=cmd_contract_check)

    cr = sub.add_parser("crawl", help="apply crawler definitions (crawlers/) to the local "
                        "catalog: tables, new columns, new partitions")
    cr.add_argument("name", nargs="?", help="one crawler (default: all)")
    cr.set_defaults(func=cmd_crawl)

    cg = sub.add_parser("catalog", help="show what the local catalog holds: databases, "
                        "tables, columns and their types, partitions")
    cg.add_argument("--format", choices=("text", "json"), default="text",
                    help="text (default), or json: each table as the Glue API's GetTable "
                    "describes it")
    cg.set_defaults(func=cmd_catalog)

    def query_output(p: argparse.ArgumentParser) -> None:
        p.add_argument("--format", choices=QUERY_FORMATS, default="table",
                       help="how to print the rows (default: table)")
        p.add_argument("--max-rows", type=int, default=1000, metavar="N",
                       help="rows to fetch at most (default: 1000)")
        p.add_argument("--timeout", type=float, default=QUERY_TIMEOUT_S, metavar="SECONDS",
                       help=f"stop a query after this long (default {QUERY_TIMEOUT_S:g})")
        p.add_argument("--memory-limit", default=QUERY_MEMORY_LIMIT, metavar="SIZE",
                       help=f"memory a query may hold; beyond it, it spills to the lake's "
                       f"temp folder, then stops (default {QUERY_MEMORY_LIMIT})")

    q = sub.add_parser("query", help="run Athena (Trino) SQL on the catalogued tables")
    q.add_argument("sql", nargs="?", help="the query, e.g. \"SELECT * FROM clean.orders\"")
    q.add_argument("--named", metavar="NAME", help="run a named query of infra/athena/")
    q.add_argument("--param", action="append", default=[], metavar="VALUE",
                   help="a value for each ? in order (named queries: NAME=VALUE); "
                   "repeatable (default: none)")
    query_output(q)
    q.set_defaults(func=cmd_query)

    nq = sub.add_parser("queries", help="list the named queries of infra/athena/, or run them")
    nq.add_argument("--run", action="store_true", help="run every named query")
    nq.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="a value of the named queries' parameters; repeatable (default: "
                    "none)")
    query_output(nq)
    nq.set_defaults(func=cmd_queries)

    pl = sub.add_parser("pipeline", help="the scheduled workflow: run each dataset's current "
                        "job on its pending uploads, then the crawlers, then a summary")
    pl.add_argument("--watch", action="store_true",
                    help="the event-driven workflow: keep watching, and run a dataset's job "
                    "(then the crawlers) once its accepted uploads reach --batch-size or "
                    "--batch-window seconds passed since the first; Ctrl-C stops between runs")
    pl.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, metavar="N",
                    help=f"with --watch: uploads that start a run (default {DEFAULT_BATCH_SIZE}, "
                    "as on AWS)")
    pl.add_argument("--batch-window", type=float, default=DEFAULT_BATCH_WINDOW_S,
                    metavar="SECONDS", help="with --watch: seconds after a batch's first upload "
                    f"that start a run (default {DEFAULT_BATCH_WINDOW_S:g}, as on AWS)")
    pl.add_argument("--poll", type=float, default=DEFAULT_POLL_S, metavar="SECONDS",
                    help=f"with --watch: how often the ledger is read (default {DEFAULT_POLL_S:g})")
    pl.set_defaults(func=cmd_pipeline)

    jr = sub.add_parser("jars", help="build the lake's commit protocol (jvm/, needs javac) and "
                        "with --s3a fetch the S3A connector a local run on s3:// needs (pinned, "
                        "SHA-256 checked, cached once)")
    jr.add_argument("--s3a", action="store_true", help="also fetch the S3A connector")
    jr.set_defaults(func=cmd_jars)

    inf = sub.add_parser("infra", help="CloudFormation generated from the repo")
    inf_sub = inf.add_subparsers(dest="infra_command", required=True)
    gen = inf_sub.add_parser("generate", help="write infra/pipelines.yaml from glue_jobs/, "
                             "crawlers/ and infra/athena/")
    gen.add_argument("--check", action="store_true",
                     help="only compare: exit 1 when the committed file is out of date")
    gen.set_defaults(func=cmd_infra_generate)

    def dist(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dist", default="dist", help="artifact folder (default: dist)")

    pk = sub.add_parser("package", help="build the lib artifact and lay out the job scripts "
                        "and contracts under their S3 keys")
    dist(pk)
    pk.set_defaults(func=cmd_package)

    ps = sub.add_parser("push", help="send files to a deployed lake through its upload API "
                        "(SigV4 with your AWS credentials) and wait for the checks")
    ps.add_argument("files", nargs="+", metavar="FILE",
                    help="CSV or JSON Lines files (gzip when the name ends in .gz)")
    ps.add_argument("--dataset", required=True, help="dataset the files belong to")
    ps.add_argument("--api", required=not os.environ.get("LAKE_API_URL"),
                    default=os.environ.get("LAKE_API_URL"),
                    help="the uploads stack's ApiEndpoint output (or $LAKE_API_URL)")
    ps.add_argument("--region", help="AWS region of the API (default: your AWS config's)")
    ps.add_argument("--wait", type=float, default=120, metavar="SECONDS",
                    help="how long to wait for ACCEPTED / REJECTED (default 120)")
    ps.set_defaults(func=cmd_push)

    dq = sub.add_parser("dlq", help="the dead-letter queue of upload events (on AWS)")
    dq_sub = dq.add_subparsers(dest="dlq_command", required=True)
    rd = dq_sub.add_parser("redrive", help="move upload events back from the dead-letter "
                           "queue to the upload queue (a dry run unless --apply)")
    where = rd.add_mutually_exclusive_group(required=True)
    where.add_argument("--env", help="environment: its <project>-<env>-uploads-dlq queue")
    where.add_argument("--queue", help="dead-letter queue name or URL")
    rd.add_argument("--to", help="queue to move to (default: the queue whose dead-letter "
                    "queue this is)")
    rd.add_argument("--apply", action="store_true", help="move the messages (default: only "
                    "report what would move)")
    rd.add_argument("--max", type=int, default=None, metavar="N", help="move at most N")
    rd.add_argument("--region", help="AWS region (default: the environment's, else the "
                    "AWS CLI's)")
    rd.set_defaults(func=cmd_dlq_redrive)

    dp = sub.add_parser("deploy", help="package, upload and deploy the CloudFormation stacks")
    dp.add_argument("--env", required=True, help="environment: infra/env/<ENV>.json")
    dp.add_argument("--dry-run", action="store_true",
                    help="print every step and command; call nothing on AWS")
    dp.add_argument("--region", help="AWS region (default: infra/env/<ENV>.json, else the "
                    "AWS CLI's)")
    dist(dp)
    dp.set_defaults(func=cmd_deploy)
    return parser


SIGPIPE_EXIT = 141  # as a shell reports a command a closed pipe stopped (128 + SIGPIPE)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "max_bytes", 0) is None:
            args.max_bytes = max_upload_bytes()
        code = args.func(args)
        sys.stdout.flush()  # what is still buffered meets a closed pipe here, not at exit
        return code
    except LakeError as exc:
        print(f"lake: error: {exc}", file=sys.stderr)
        return 130 if exc.code == "query.interrupted" else 2
    except BrokenPipeError:
        # The reader went away (`lake status | head -1`): stop quietly, and point stdout at
        # /dev/null so that the flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return SIGPIPE_EXIT


if __name__ == "__main__":
    sys.exit(main())
