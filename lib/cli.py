"""``lake``: the command line of the local lake.

    lake [--lake-root DIR] run JOB [--version N] [--input PATH ...]

``--lake-root`` defaults to ``$LAKE_ROOT`` or ``.lake``. ``run`` calls the job's entry point
in ``glue_jobs/<job>/v<N>/job.py`` in-process with the same Glue-style arguments the job gets
on AWS.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
from collections.abc import Sequence
from importlib import resources

from lib.contract import ContractError, ContractNotFoundError
from lib.lake_paths import to_uri
from lib.runtime import JobArgumentError

_VERSION_DIR = re.compile(r"^v(\d+)$")


class CliError(Exception):
    pass


def job_versions() -> dict[str, tuple[int, ...]]:
    """Jobs in ``glue_jobs/``: name -> sorted versions."""
    out: dict[str, tuple[int, ...]] = {}
    for job_dir in resources.files("glue_jobs").iterdir():
        if not job_dir.is_dir() or job_dir.name.startswith(("_", ".")):
            continue
        versions = sorted(
            int(m.group(1)) for d in job_dir.iterdir()
            if d.is_dir() and (m := _VERSION_DIR.match(d.name)) and (d / "job.py").is_file()
        )
        if versions:
            out[job_dir.name] = tuple(versions)
    return out


def resolve_job(name: str, version: int | None) -> tuple[int, object]:
    jobs = job_versions()
    if name not in jobs:
        raise CliError(f"unknown job {name!r}; known jobs: {', '.join(sorted(jobs)) or '(none)'}")
    if version is None:
        version = jobs[name][-1]
    elif version not in jobs[name]:
        raise CliError(f"job {name!r} has no version {version}; versions: "
                       f"{', '.join(map(str, jobs[name]))}")
    return version, importlib.import_module(f"glue_jobs.{name}.v{version}.job")


def cmd_run(args: argparse.Namespace) -> int:
    version, module = resolve_job(args.job, args.version)
    argv = ["--JOB_NAME", f"{args.job}_v{version}", "--lake_root", to_uri(args.lake_root)]
    if args.input:
        argv += ["--input_paths", json.dumps([to_uri(p) for p in args.input])]
    return int(module.main(argv))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lake", description="Run the lake's Glue jobs locally.")
    parser.add_argument("--lake-root", default=os.environ.get("LAKE_ROOT", ".lake"),
                        help="lake root folder or URI (default: $LAKE_ROOT or .lake)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a job on raw uploads")
    run.add_argument("job", help="job name, e.g. orders")
    run.add_argument("--version", type=int, help="job version (default: the latest)")
    run.add_argument("--input", nargs="+", metavar="PATH",
                     help="files to process (default: every CSV under raw/<dataset>/)")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, JobArgumentError, ContractError, ContractNotFoundError) as exc:
        print(f"lake: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
