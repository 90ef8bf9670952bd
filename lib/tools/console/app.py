"""The lake console: uploads by drag and drop with live progress, on the same ledger, zones
and run reports as the ``lake`` CLI (it keeps no store of its own).

The HTTP API has the shape of the deployed upload API (:mod:`lib.lambdas.upload_api`):

* ``POST /uploads`` ``{"dataset", "file_name", "size_bytes"}`` records the upload RECEIVED
  and answers ``201`` with where to send the bytes (``upload.url``, ``upload.method``);
* ``PUT /uploads/{id}/content`` streams the bytes to disk (never whole in memory; the size
  limit enforced while they arrive), then runs exactly the checks of ``lake upload``: the
  upload becomes ACCEPTED or REJECTED with the same reason code and message;
* ``GET /uploads/{id}`` answers the record and its status history; ``GET /uploads`` lists
  them (``dataset``, ``status`` filters); ``GET /uploads/{id}/events`` streams each status
  change as a server-sent event until the upload is ARCHIVED, REJECTED or FAILED;
* ``POST /datasets/{dataset}/runs`` starts the dataset's current job on its pending uploads
  in the background (one run per dataset at a time; the ledger's run lock still applies);
  ``GET /datasets/{dataset}/runs/current`` says whether one goes and, once it ended, its
  outcome; ``POST /uploads/{id}/reprocess`` runs the job on one upload again (``lake
  reprocess``);
* ``GET /datasets/{dataset}/template`` is a file to fill in: the CSV header, or a JSON Lines
  object with every key.

Refusals and errors are ``{"error": <code>, "message": <what and why>}`` with a ``4xx`` or
``5xx`` status, for every API route, an unknown one and a malformed body (422) included; a
page (``/``, ``/ui/...``, ``/reports/...``, or any request a browser sends for a page)
answers its errors as an HTML page saying the same. Every request
passes :class:`lib.tools.console.security.Guard` first: its ``Host`` must be the console's
own (DNS rebinding), a request that changes something must carry the ``X-Lake-Console``
header and no foreign ``Origin`` (no cross-site request can upload or start a run), its
body is bounded while it streams, and every answer carries the security headers. Every
template escapes what it renders. The server binds to 127.0.0.1 by default (see
docs/console.md before exposing it). Nothing it does deletes raw bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import ipaddress
import json
import logging
import re
import socket
import sys
import threading
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader
from pydantic import BaseModel, Field
from sse_starlette.sse import EventSourceResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from lib.contracts.contract import available_contracts, load_contract
from lib.errors import LakeError
from lib.jobs.args import job_argv
from lib.jobs.fast_lane import route, run_fast_lane
from lib.jobs.report_html import RECENT_RUNS, past_run, templates_loader, trend_chart
from lib.jobs.run import select_uploads
from lib.lake.paths import LakePaths, local_path
from lib.lambdas.upload_api import unsafe_name_reason, with_history
from lib.ledger.records import (
    ACCEPTED,
    ARCHIVED,
    FAILED,
    PROCESSING,
    RECEIVED,
    REJECTED,
    STATUSES,
    UnknownUploadError,
    UploadRecord,
)
from lib.ledger.sqlite import open_ledger
from lib.tools.console import quarantine, views
from lib.tools.console.security import CSRF_HEADER, LOOPBACK, BodyTooLarge, Guard
from lib.tools.job_versions import job_versions, resolve_job
from lib.upload.checks import DEFAULT_MAX_BYTES, human_bytes, upload_limit
from lib.upload.landing import check_and_land, receive, reject

CONTENT_PATH = re.compile(r"^/uploads/[^/]+/content$")
MAX_JSON_BYTES = 64 * 1024  # the body of a POST; file bytes go to PUT .../content
FINAL = (ARCHIVED, REJECTED, FAILED)
SHOWN_ROWS = 50  # quarantined rows on an upload's page; the CSV has them all
WILDCARDS = ("0.0.0.0", "::")
RUN_ID = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{6}$")
PAGE_PREFIXES = ("/ui/", "/reports/")  # answered as pages, errors included
REPROCESSABLE = (ARCHIVED, FAILED)  # an upload whose raw bytes a run can take again


class UploadRequest(BaseModel):
    dataset: str = Field(examples=["orders"])
    file_name: str = Field(examples=["orders_2026-11-01.csv"])
    size_bytes: int = Field(examples=[1234])


class Target(BaseModel):
    url: str
    method: str


class UploadCreated(BaseModel):
    upload_id: str
    status: str
    dataset: str
    contract: str
    stored_name: str
    size_bytes: int
    max_upload_bytes: int
    upload: Target
    status_url: str
    events_url: str


class HistoryEntry(BaseModel):
    at: str
    from_status: str | None = Field(alias="from")
    to: str
    note: str | None

    model_config = {"populate_by_name": True}


class UploadView(BaseModel):
    upload_id: str
    dataset: str
    status: str
    original_name: str
    stored_name: str
    size_bytes: int
    received_at: str
    updated_at: str
    reason_code: str | None = None
    reason: str | None = None
    error_code: str | None = None
    error: str | None = None
    rows_read: int | None = None
    clean: int | None = None
    quarantined: int | None = None
    duplicates_removed: int | None = None
    run_id: str | None = None
    warnings: list[str] = []
    explained: dict[str, str] | None = Field(
        default=None, description="the reason or error code in plain words: meaning, action")
    original_id: str | None = Field(
        default=None, description="a duplicate's original: the upload with the same content")
    history: list[HistoryEntry] = []


class Refusal(BaseModel):
    error: str
    message: str


class _PhaseHandler(logging.Handler):
    """Keeps, per dataset, the last INFO line its job (logger ``lake.<dataset>_v<N>``)
    logged: the phase a card shows while its upload is PROCESSING."""

    def __init__(self, phases: dict[str, str]) -> None:
        super().__init__(logging.INFO)
        self.phases = phases

    def emit(self, record: logging.LogRecord) -> None:
        job = record.name.removeprefix("lake.")
        if "_v" in job:
            self.phases[job.rsplit("_v", 1)[0]] = record.getMessage().splitlines()[0][:200]


class Refused(LakeError):
    """A refused request: the HTTP ``status``, the ``code`` and message of the JSON body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status, self.message = status, message
        super().__init__(message, code)


def _resource(*parts: str) -> Path:
    return Path(str(resources.files("lib.tools.console").joinpath(*parts)))


def create_app(lake_root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES,
               allowed_hosts: Collection[str] = LOOPBACK, fast_lane: bool = True) -> FastAPI:
    """The console on the lake at ``lake_root``; ``max_bytes`` as ``lake upload --max-bytes``
    (lowered per dataset by its contract); ``allowed_hosts``: the host names requests may
    address (:mod:`lib.tools.console.security`); ``fast_lane``: an accepted upload small
    enough for the fast lane is processed at once, as ``lake upload --process`` does (else
    it waits for "Process now" or the batch run)."""
    lake_root = Path(lake_root).resolve()
    paths = LakePaths.from_root(lake_root)
    incoming = lake_root / "_console" / "incoming"
    runs: dict[str, views.RunState] = {}
    runs_lock = threading.Lock()
    phases: dict[str, str] = {}  # dataset -> the last line its job logged in this process
    phase_handler = _PhaseHandler(phases)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        logging.getLogger("lake").addHandler(phase_handler)
        try:
            yield
        finally:
            logging.getLogger("lake").removeHandler(phase_handler)

    # No /docs or /redoc: FastAPI's pages load their script from a CDN; the OpenAPI
    # description stays at /openapi.json.
    app = FastAPI(title="lake console", version="1", lifespan=lifespan, docs_url=None,
                  redoc_url=None, description=__doc__.split("\n\n")[0] if __doc__ else None)
    app.add_middleware(Guard, hosts=allowed_hosts, max_body=MAX_JSON_BYTES,
                       streamed=lambda method, path: method == "PUT" and CONTENT_PATH.match(path))
    app.mount("/static", StaticFiles(directory=_resource("static")), name="static")
    # Every template escapes what it renders, whatever its file name (Starlette's default
    # only escapes .html, .htm and .xml names, and these are .html.j2).
    env = Environment(loader=ChoiceLoader([FileSystemLoader(_resource("templates")),
                                           templates_loader()]), autoescape=True)
    views.install(env)
    templates = Jinja2Templates(env=env)

    def ledger():  # noqa: ANN202 - one connection per request (SQLite, threads)
        return open_ledger(lake_root)

    def view(record: UploadRecord) -> dict[str, Any]:
        found = ledger()
        original = views.original_of(record, found) \
            if record.reason_code == "file.duplicate" else None
        return {**with_history(found, record),
                "explained": views.explain_code(record.reason_code or record.error_code),
                "original_id": original.upload_id if original else None}

    def get(upload_id: str) -> UploadRecord:
        try:
            return ledger().get(upload_id)
        except UnknownUploadError:
            raise Refused(404, "upload.unknown", f"no upload {upload_id!r}") from None

    def contract_of(dataset: str):  # noqa: ANN202
        known = available_contracts()
        if dataset not in known:
            raise Refused(400, "dataset.unknown", f"unknown dataset {dataset!r}; known "
                          f"datasets: {', '.join(sorted(known)) or '(none)'}")
        return load_contract(dataset)

    def error(request: Request, status: int, code: str, message: str) -> Response:
        """An error as the asker reads it: an HTML page for a page, else JSON."""
        if views.wants_page(request, PAGE_PREFIXES):
            return templates.TemplateResponse(
                request, "error.html.j2", {"status": status, "code": code, "message": message,
                                           "title": views.ERROR_TITLES.get(status, "Error")},
                status_code=status)
        return JSONResponse({"error": code, "message": message}, status_code=status)

    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> Response:
        return error(request, exc.status, exc.code, exc.message)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, exc: BodyTooLarge) -> Response:
        return error(request, 413, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error(request, 404, "not_found", f"nothing at {request.url.path[:200]}; "
                         "the console's pages are / (upload), /ui/uploads and /ui/datasets/"
                         "<dataset>")
        if exc.status_code == 405:
            return error(request, 405, "request.method", f"{request.method} is not allowed on "
                         f"{request.url.path[:200]}")
        return error(request, exc.status_code, "request.invalid", str(exc.detail)[:500])

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        return error(request, 422, "request.invalid", views.validation_message(exc.errors()))

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> Response:
        logging.getLogger("lake.console").exception("%s %s failed", request.method,
                                                    request.url.path)
        return error(request, 500, "console.error", f"the console failed on this request "
                     f"({type(exc).__name__}); the terminal running lake serve has the details")

    # -- API ------------------------------------------------------------------------------

    @app.post("/uploads", status_code=201, response_model=UploadCreated,
              responses={400: {"model": Refusal}, 413: {"model": Refusal}})
    def create_upload(body: UploadRequest) -> dict[str, Any]:
        """Record an upload RECEIVED and answer where to send its bytes."""
        contract = contract_of(body.dataset)
        limit = upload_limit(contract, max_bytes)
        name = body.file_name
        if body.size_bytes <= 0:
            raise Refused(400, "file.empty", f"{name}: size_bytes is {body.size_bytes}; an "
                          "upload needs at least one byte")
        if body.size_bytes > limit:
            raise Refused(413, "file.too_large", f"{name}: {human_bytes(body.size_bytes)} is "
                          f"over the limit of {human_bytes(limit)} for dataset "
                          f"{body.dataset!r}; split the file and upload the parts")
        why = unsafe_name_reason(name)
        if why:
            raise Refused(400, "file.unsafe_name", f"{name!r}: {why}")
        record = receive(contract, ledger(), name, body.size_bytes,
                         note=f"received {name} in the console")
        uid = record.upload_id
        return {"upload_id": uid, "status": record.status, "dataset": record.dataset,
                "contract": contract.ref, "stored_name": record.stored_name,
                "size_bytes": body.size_bytes, "max_upload_bytes": limit,
                "upload": {"url": f"/uploads/{uid}/content", "method": "PUT"},
                "status_url": f"/uploads/{uid}", "events_url": f"/uploads/{uid}/events"}

    @app.put("/uploads/{upload_id}/content", response_model=UploadView,
             responses={404: {"model": Refusal}, 409: {"model": Refusal},
                        413: {"model": Refusal}})
    async def send_content(upload_id: str, request: Request) -> dict[str, Any]:
        """The upload's bytes, streamed to disk, then the checks of ``lake upload``. One
        upload takes one body: while a request sends it, another is refused (409)."""
        record = get(upload_id)
        if record.status != RECEIVED:
            raise Refused(409, "upload.not_receiving", f"upload {upload_id} is {record.status};"
                          " its bytes were already received")
        contract = load_contract(record.dataset)
        limit = upload_limit(contract, max_bytes)
        folder = incoming / upload_id
        folder.mkdir(parents=True, exist_ok=True)
        part = folder / record.stored_name
        with part.open("ab") as out:
            try:  # the kernel drops the lock if this process dies
                fcntl.flock(out, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Refused(409, "upload.receiving", f"upload {upload_id}: another request is "
                              "sending its bytes; one upload takes one body") from None
            try:
                record = get(upload_id)  # under the lock: a request before this one may be done
                if record.status != RECEIVED:
                    raise Refused(409, "upload.not_receiving", f"upload {upload_id} is "
                                  f"{record.status}; its bytes were already received")
                out.truncate(0)
                received = 0
                async for chunk in request.stream():
                    received += len(chunk)
                    if received > limit:
                        msg = (f"{record.original_name}: more than {human_bytes(limit)}, the "
                               f"limit for dataset {record.dataset!r}; split the file and "
                               "upload the parts")
                        await run_in_threadpool(reject, record, "file.too_large", msg,
                                                ledger(), paths)
                        raise Refused(413, "file.too_large", msg)
                    await run_in_threadpool(out.write, chunk)
                out.flush()
                done = await run_in_threadpool(check_and_land, part, record, contract, ledger(),
                                               paths, max_bytes=limit)
            finally:
                part.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # not empty: another request's part
                    folder.rmdir()
        if fast_lane:
            start_fast_lane(done)
        return view(done)

    def start_fast_lane(record: UploadRecord) -> None:
        """A small accepted upload through the fast lane, in the background (its run takes
        every small accepted upload of the dataset; the page follows the status live)."""
        versions = job_versions().get(record.dataset)
        if record.status != ACCEPTED or not versions:
            return
        contract = load_contract(record.dataset, versions[-1])
        if not route([record], contract).fast:
            return
        thread = threading.Thread(
            target=run_fast_lane, args=(contract, versions[-1], str(lake_root), ledger(),
                                        [record.upload_id]),
            daemon=True, name=f"fast-lane-{record.upload_id}")
        thread.start()

    @app.get("/uploads/{upload_id}", response_model=UploadView,
             responses={404: {"model": Refusal}})
    def upload_status(upload_id: str) -> dict[str, Any]:
        """The upload's record and its status history."""
        return view(get(upload_id))

    @app.get("/uploads", response_model=list[UploadView])
    def list_uploads(dataset: str | None = None, status: str | None = None) -> list[dict]:
        """The ledger, newest first, filtered by dataset and status."""
        if status is not None and status not in STATUSES:
            raise Refused(400, "request.invalid", f"unknown status {status!r}; statuses: "
                          f"{', '.join(STATUSES)}")
        records = ledger().find(dataset, (status,) if status else None)
        return [{**r.to_dict(), "history": []}
                for r in sorted(records, key=lambda r: r.received_at, reverse=True)]

    @app.get("/uploads/{upload_id}/events")
    async def upload_events(upload_id: str, request: Request) -> EventSourceResponse:
        """Each status change of the upload as a server-sent event ``status`` (data: the
        record), from its current status until ARCHIVED, REJECTED or FAILED. While it is
        PROCESSING by a run this console started, ``phase`` is the run's latest step as
        its job logs it (reading and validating, counting, writing, publishing), and each
        new step is an event."""
        get(upload_id)

        async def events() -> AsyncIterator[dict]:
            last = None
            while not await request.is_disconnected():
                record = await run_in_threadpool(get, upload_id)
                phase = phases.get(record.dataset) if record.status == PROCESSING else None
                if (record.status, phase) != last:
                    last = (record.status, phase)
                    yield {"event": "status",
                           "data": json.dumps({**record.to_dict(), "phase": phase,
                                               "explained": views.explain_code(
                                                   record.reason_code or record.error_code)})}
                    if record.status in FINAL:
                        return
                await asyncio.sleep(0.3)
        return EventSourceResponse(events())

    def launch(dataset: str, upload_ids: Sequence[str] | None) -> dict[str, Any]:
        versions = job_versions().get(dataset)
        if not versions:
            raise Refused(400, "job.unknown", f"dataset {dataset!r} has no job in glue_jobs/")
        version, module = resolve_job(dataset, versions[-1])
        with runs_lock:
            if dataset in runs and runs[dataset].running:
                raise Refused(409, "run.busy", f"a run of {dataset} is in progress; wait for it "
                              "to end (this page says when), then try again")
            argv = job_argv(dataset, version, lake_root, upload_ids)
            state = views.RunState(dataset, f"{dataset}_v{version}", list(upload_ids or []))
            runs[dataset] = state
            state.start(module.main, argv)
        return {"dataset": dataset, "job": state.job, "status": "started",
                "started_at": state.started_at, "status_url": f"/datasets/{dataset}/runs/current"}

    @app.post("/datasets/{dataset}/runs", status_code=202,
              responses={400: {"model": Refusal}, 409: {"model": Refusal}})
    def start_run(dataset: str) -> dict[str, Any]:
        """Start the dataset's current job on its pending uploads (accepted, and failed ones
        not held), in the background; 409 ``run.nothing_to_process`` when none waits."""
        contract_of(dataset)
        if not select_uploads(ledger(), dataset, None):  # what the run would take
            raise Refused(409, "run.nothing_to_process", f"no upload of {dataset} waits for a "
                          "run (accepted, or failed and due for a retry): upload files first "
                          "(an upload the fast lane took is processed already)")
        return launch(dataset, None)

    @app.post("/uploads/{upload_id}/reprocess", status_code=202,
              responses={404: {"model": Refusal}, 409: {"model": Refusal}})
    def reprocess(upload_id: str) -> dict[str, Any]:
        """Run the dataset's current job on one upload again, replacing its rows (``lake
        reprocess``): an ARCHIVED or FAILED upload, whose raw bytes the lake keeps."""
        record = get(upload_id)
        if record.status not in REPROCESSABLE:
            raise Refused(409, "upload.not_reprocessable", f"upload {upload_id} is "
                          f"{record.status}; only an ARCHIVED or FAILED upload can be processed "
                          "again" + (" (a rejected file never reached the raw zone: upload it "
                                     "again)" if record.status == REJECTED else ""))
        return launch(record.dataset, [upload_id])

    @app.get("/datasets/{dataset}/runs/current", responses={400: {"model": Refusal}})
    def current_run(dataset: str) -> dict[str, Any]:
        """The run this console started last for the dataset: ``running``, then its
        ``outcome`` (the run's report: status and counts, or the error)."""
        contract_of(dataset)
        state = runs.get(dataset)
        if state is None:
            return {"dataset": dataset, "running": False, "job": None, "outcome": None}
        outcome = None if state.running else state.outcome(reports_of(dataset))
        return {"dataset": dataset, "running": state.running, "job": state.job,
                "started_at": state.started_at, "upload_ids": state.upload_ids,
                "outcome": outcome}

    def reports_of(dataset: str) -> list[dict]:
        """The dataset's recent JSON reports, oldest first (unreadable ones skipped)."""
        folder = local_path(paths.report_dir(dataset))
        found = sorted(folder.glob("*.json")) if folder and folder.is_dir() else []
        out = []
        for f in found[-RECENT_RUNS * 3:]:
            with contextlib.suppress(OSError, ValueError):
                d = json.loads(f.read_text("utf-8"))
                if isinstance(d, dict) and "run_id" in d:
                    out.append(d)
        return out

    @app.get("/datasets/{dataset}/template", responses={400: {"model": Refusal}})
    def template_file(dataset: str) -> Response:
        """A file to fill in for the dataset: its CSV header row, or one JSON Lines object
        with every key and an example value of its type."""
        contract = contract_of(dataset)
        name, media, body = views.template_file(contract)
        return Response(body, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/reports/{dataset}/{run_id}", response_class=HTMLResponse,
             responses={404: {"model": Refusal}})
    def report_page(dataset: str, run_id: str) -> HTMLResponse:
        """A run's data-quality page, as the job wrote it beside its JSON report."""
        contract_of(dataset)
        if not RUN_ID.match(run_id):
            raise Refused(400, "request.invalid", f"{run_id!r} is not a run id")
        page = local_path(paths.report_page(dataset, run_id))
        if page is None or not page.is_file():
            raise Refused(404, "report.unknown", f"no report of run {run_id} of {dataset}")
        return HTMLResponse(page.read_text("utf-8"))

    # -- pages ----------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def upload_page(request: Request) -> HTMLResponse:
        offered = []
        for d in sorted(available_contracts()):
            contract = load_contract(d)
            offered.append(views.DatasetOffer.of(contract, upload_limit(contract, max_bytes)))
        return templates.TemplateResponse(request, "upload.html.j2", {
            "datasets": offered, "csrf_header": CSRF_HEADER})

    def quarantine_files(record: UploadRecord) -> list[Path]:
        zone = local_path(paths.quarantine_dataset(record.dataset))
        return quarantine.upload_files(zone, record.upload_id) if zone else []

    @app.get("/uploads/{upload_id}/quarantine.csv", response_class=StreamingResponse,
             responses={404: {"model": Refusal}})
    def quarantined_csv(upload_id: str) -> StreamingResponse:
        """Every quarantined row of the upload (raw values as received, reason codes joined
        by ';', record number in the file) as CSV, streamed."""
        record = get(upload_id)
        return StreamingResponse(
            quarantine.as_csv(quarantine_files(record)), media_type="text/csv",
            headers={"Content-Disposition":
                     f'attachment; filename="{upload_id}_quarantine.csv"'})

    @app.get("/ui/uploads/{upload_id}", response_class=HTMLResponse, include_in_schema=False)
    def upload_page_of(request: Request, upload_id: str) -> HTMLResponse:
        found = get(upload_id)
        record = view(found)
        files = quarantine_files(found)
        reasons = quarantine.reason_counts(files)
        columns, sample = quarantine.first(files, SHOWN_ROWS)
        original = get(record["original_id"]) if record["original_id"] else None
        return templates.TemplateResponse(request, "upload_detail.html.j2", {
            "r": record, "reasons": reasons, "reason_max": max(reasons.values(), default=0),
            "table": views.quarantine_table(columns, sample, load_contract(found.dataset),
                                            found.location),
            "shown": SHOWN_ROWS, "original": original, "csrf_header": CSRF_HEADER,
            "reprocessable": found.status in REPROCESSABLE})

    @app.get("/ui/datasets/{dataset}", response_class=HTMLResponse, include_in_schema=False)
    def dataset_page(request: Request, dataset: str) -> HTMLResponse:
        """The dataset's runs, newest first, from their JSON reports: status, counts, the
        quarantine ratio and its trend against the contract's threshold, each with its
        report page. A run that found nothing to process is counted, not listed."""
        contract = contract_of(dataset)
        reports = reports_of(dataset)
        history = sorted(filter(None, map(past_run, reports)), key=lambda r: r.run_id)
        worked = [r for r in history if r.uploads][-RECENT_RUNS:]
        idle = len(history) - len([r for r in history if r.uploads])
        info = {d["run_id"]: d for d in reports}
        return templates.TemplateResponse(request, "dataset.html.j2", {
            "dataset": dataset, "contract": contract, "runs": list(reversed(worked)),
            "info": info, "idle": idle, "chart": trend_chart(worked, contract),
            "limit": upload_limit(contract, max_bytes)})

    @app.get("/ui/uploads", response_class=HTMLResponse, include_in_schema=False)
    def uploads_page(request: Request, dataset: str | None = None,
                     status: str | None = None) -> HTMLResponse:
        records = list_uploads(dataset or None, status or None)
        return templates.TemplateResponse(request, "uploads.html.j2", {
            "records": records, "datasets": sorted(available_contracts()),
            "statuses": STATUSES, "dataset": dataset or "", "status": status or ""})

    return app


def serving_hosts(host: str, allow: Sequence[str] = ()) -> tuple[str, ...]:
    """The host names requests may address when the console binds ``host``: the loopback
    names when it binds loopback, the bound address otherwise, and the names of ``allow``."""
    if _is_loopback(host):
        bound = [*LOOPBACK]
    elif host in WILDCARDS:  # every interface: this machine's names; other names via allow
        bound = [*LOOPBACK, socket.gethostname()]
    else:
        bound = [host]
    return tuple(dict.fromkeys([*bound, *allow]))


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def exposure_warning(host: str) -> str | None:
    """What binding ``host`` exposes, or None for loopback."""
    if _is_loopback(host):
        return None
    where = "every network interface of this machine" if host in WILDCARDS \
        else f"the network address {host}"
    return (f"warning: the console listens on {where}. Anyone who can reach it can upload "
            "files, read every upload's rows and reports, and start runs: it has no login. Put "
            "a reverse proxy with TLS and authentication in front of it (docs/console.md, "
            "Security).")


def serve(lake_root: Path, host: str = "127.0.0.1", port: int = 8000,
          max_bytes: int = DEFAULT_MAX_BYTES, *, expose: bool = False,
          allow_hosts: Sequence[str] = (), fast_lane: bool = True) -> None:
    """Serve the console; binding beyond loopback needs ``expose`` (``lake serve
    --expose``) and prints what that exposes."""
    import uvicorn

    warning = exposure_warning(host)
    if warning and not expose:
        raise LakeError(f"--host {host} is not a loopback address: the console would be "
                        "reachable from other machines, and it has no login. Pass --expose "
                        "to do it anyway (behind a reverse proxy with authentication), or "
                        "keep the default 127.0.0.1", "serve.exposed")
    if warning:
        print(warning, file=sys.stderr, flush=True)
    hosts = serving_hosts(host, allow_hosts)
    print(f"lake console on http://{host}:{port}/ (lake {lake_root}; answers to "
          f"{', '.join(hosts)}); Ctrl-C stops it", flush=True)
    uvicorn.run(create_app(lake_root, max_bytes=max_bytes, allowed_hosts=hosts,
                           fast_lane=fast_lane), host=host, port=port, log_level="warning")
