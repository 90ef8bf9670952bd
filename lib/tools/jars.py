"""``lake jars``: fetch the S3A connector (:data:`lib.jobs.s3a.S3A_JARS`) once into the
cache a local ``s3://`` run loads it from.

Each jar comes from Maven Central (``$LAKE_MAVEN_REPO`` to use a mirror), is written under a
temporary name, and only replaces its cache entry once its SHA-256 matches the pin; a jar
already cached with the right hash is not fetched again. A wrong hash or a failed download
stops with the jar, the URL and what was expected; nothing half-written stays.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from lib.errors import LakeError
from lib.jobs.s3a import S3A_JARS, Jar, jars_dir

MAVEN_REPO_ENV = "LAKE_MAVEN_REPO"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class JarFetchError(LakeError):
    """A pinned jar could not be fetched, or is not the pinned file."""

    default_code = "jars.fetch"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(folder: Path | None = None, repo: str | None = None,
          say: Callable[[str], None] = print) -> list[Path]:
    """The pinned jars in ``folder`` (default :func:`lib.jobs.s3a.jars_dir`), fetched if
    missing or not the pinned file."""
    folder = folder or jars_dir()
    repo = (repo or os.environ.get(MAVEN_REPO_ENV) or MAVEN_CENTRAL).rstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    return [_fetch_one(jar, folder, repo, say) for jar in S3A_JARS]


def _fetch_one(jar: Jar, folder: Path, repo: str, say: Callable[[str], None]) -> Path:
    target = folder / jar.file_name
    if target.is_file() and _sha256(target) == jar.sha256:
        return target
    url = f"{repo}/{jar.path}"
    say(f"fetching {jar.group}:{jar.artifact}:{jar.version} from {url}")
    partial = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as answer, partial.open("wb") as out:
            shutil.copyfileobj(answer, out, 1 << 20)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise JarFetchError(f"could not fetch {jar.file_name} from {url}: {exc}") from None
    got = _sha256(partial)
    if got != jar.sha256:
        partial.unlink()
        raise JarFetchError(f"{url}: SHA-256 {got} is not the pinned {jar.sha256}; "
                            "nothing was cached")
    partial.replace(target)
    return target
