"""Where each zone of the lake lives. Paths are URIs built from configuration, segment by
segment, never by string formatting of whole paths.

    <root>/raw/<dataset>/ingest_date=YYYY-MM-DD/<upload_id>/<file>       accepted, pending
    <root>/rejected/<dataset>/ingest_date=YYYY-MM-DD/<upload_id>/<file>  + <file>.reason.json
    <root>/archive/<dataset>/ingest_date=YYYY-MM-DD/<upload_id>/<file>   after processing
    <root>/clean/<dataset>/<partition>=<value>/<upload_id>_<run_id>_<task>.c<n>.snappy.parquet
    <root>/quarantine/<dataset>/ingest_date=YYYY-MM-DD/<upload_id>_<run_id>_<task>.c<n>.snappy.parquet
    <root>/clean/_commits/<dataset>/<run_id>.intent.json  the uploads a run is writing
    <root>/clean/_commits/<dataset>/<run_id>.json         its journal, once committed
    <root>/_reports/<dataset>/<run_id>.json
    <root>/_ledger/uploads.sqlite                    the upload ledger (local)

Locally the root is a folder (``file://``); on AWS each zone may be its own bucket.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

_SEGMENT_RE = re.compile(r"^[^/\\]+$")


def to_uri(location: str | Path) -> str:
    """A local path or a URI -> a URI without a trailing slash (local paths become
    absolute ``file://`` URIs)."""
    text = str(location)
    if urlparse(text).scheme in ("", "file") and not text.startswith("file:"):
        text = Path(text).expanduser().resolve().as_uri()
    return text.rstrip("/")


def join(base: str, *segments: str) -> str:
    """Append path segments to a URI; each segment must be non-empty and hold no '/'."""
    out = base.rstrip("/")
    for seg in segments:
        if not seg or not _SEGMENT_RE.match(seg) or seg in (".", ".."):
            raise ValueError(f"invalid path segment {seg!r} (joining onto {base})")
        out = f"{out}/{seg}"
    return out


def local_path(uri: str) -> Path | None:
    """The local filesystem path of a ``file://`` URI, else None."""
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else None


@dataclass(frozen=True)
class LakePaths:
    raw: str
    clean: str
    quarantine: str
    reports: str
    archive: str
    rejected: str

    @classmethod
    def from_root(cls, root: str | Path, **overrides: str | None) -> LakePaths:
        base = to_uri(root)
        zones = {
            "raw": join(base, "raw"),
            "clean": join(base, "clean"),
            "quarantine": join(base, "quarantine"),
            "reports": join(base, "_reports"),
            "archive": join(base, "archive"),
            "rejected": join(base, "rejected"),
        }
        zones.update({k: to_uri(v) for k, v in overrides.items() if v})
        return cls(**zones)

    def raw_dataset(self, dataset: str) -> str:
        return join(self.raw, dataset)

    def clean_dataset(self, dataset: str) -> str:
        return join(self.clean, dataset)

    def quarantine_dataset(self, dataset: str) -> str:
        return join(self.quarantine, dataset)

    def staging_root(self, zone_uri: str, dataset: str) -> str:
        """Where releases before the write-once publish staged a run's files (recovery still
        removes what a run of one of them left)."""
        return join(zone_uri, "_staging", dataset)

    def journal_dir(self, dataset: str) -> str:
        """Commit journals of runs publishing into the dataset (skipped by readers: ``_``)."""
        return join(self.clean, "_commits", dataset)

    def journal(self, dataset: str, run_id: str) -> str:
        return join(self.journal_dir(dataset), f"{run_id}.json")

    def intent(self, dataset: str, run_id: str) -> str:
        return join(self.journal_dir(dataset), f"{run_id}.intent.json")

    @staticmethod
    def upload_file(zone_uri: str, dataset: str, ingest_date: str, upload_id: str,
                    name: str) -> str:
        """``<zone>/<dataset>/ingest_date=D/<upload_id>/<name>``: an upload's file in the
        raw, rejected or archive zone."""
        return join(zone_uri, dataset, f"ingest_date={ingest_date}", upload_id, name)

    def landed(self, dataset: str, ingest_date: str, upload_id: str, name: str) -> str:
        return self.upload_file(self.raw, dataset, ingest_date, upload_id, name)

    def set_aside(self, dataset: str, ingest_date: str, upload_id: str, name: str) -> str:
        return self.upload_file(self.rejected, dataset, ingest_date, upload_id, name)

    def archived(self, dataset: str, ingest_date: str, upload_id: str, name: str) -> str:
        return self.upload_file(self.archive, dataset, ingest_date, upload_id, name)

    def report_dir(self, dataset: str) -> str:
        return join(self.reports, dataset)

    def report(self, dataset: str, run_id: str) -> str:
        return join(self.report_dir(dataset), f"{run_id}.json")

    def report_page(self, dataset: str, run_id: str) -> str:
        """The run report as an HTML page, beside the JSON one."""
        return join(self.report_dir(dataset), f"{run_id}.html")
