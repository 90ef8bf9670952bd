"""``lake jars``: build the lake's commit protocol, and fetch the S3A connector
(:data:`lib.jobs.s3a.S3A_JARS`) once, into the cache a local session loads them from
(:mod:`lib.jobs.jars`).

The commit protocol (``jvm/``) is compiled with the JDK's ``javac`` against pyspark's own
jars (Spark 3.5.4, as on Glue 5.0) into a reproducible ``lake-spark.jar``: the same source
and JDK give the same bytes, which ``lake package`` ships for ``--extra-jars``.

Each jar comes from Maven Central (``$LAKE_MAVEN_REPO`` to use a mirror), is written under a
temporary name, and only replaces its cache entry once its SHA-256 matches the pin; a jar
already cached with the right hash is not fetched again. A wrong hash or a failed download
stops with the jar, the URL and what was expected; nothing half-written stays.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

from lib.errors import LakeError
from lib.jobs.jars import PROTOCOL_JAR, Jar, jars_dir
from lib.jobs.s3a import S3A_JARS
from lib.tools.repo import REPO_ROOT
from lib.tools.zips import zip_tree

MAVEN_REPO_ENV = "LAKE_MAVEN_REPO"
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


class JarFetchError(LakeError):
    """A pinned jar could not be fetched, or is not the pinned file."""

    default_code = "jars.fetch"


class JarBuildError(LakeError):
    """The commit protocol could not be compiled."""

    default_code = "jars.build"


def _javac() -> str:
    home = os.environ.get("JAVA_HOME")
    candidate = Path(home) / "bin" / "javac" if home else None
    found = str(candidate) if candidate and candidate.is_file() else shutil.which("javac")
    if not found:
        raise JarBuildError(
            "building the lake's commit protocol (jvm/) needs a JDK 17's javac, found neither "
            f"{'in JAVA_HOME (' + home + ') nor ' if home else ''}on PATH: install a JDK 17 "
            "(e.g. apt-get install openjdk-17-jdk-headless) and retry")
    return found


def protocol_jar_bytes(source: Path = REPO_ROOT / "jvm") -> bytes:
    """``source``'s Java compiled for Java 17 against pyspark's jars, as a reproducible jar."""
    import pyspark

    spark_jars = Path(pyspark.__file__).parent / "jars"
    files = sorted(str(p) for p in source.rglob("*.java"))
    if not files:
        raise JarBuildError(f"no Java source under {source}")
    with tempfile.TemporaryDirectory(prefix="lake-javac-") as out:
        done = subprocess.run([_javac(), "--release", "17", "-nowarn", "-encoding", "UTF-8",
                               "-cp", f"{spark_jars}/*", "-d", out, *files],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise JarBuildError(f"javac failed on {source}:\n{done.stderr.strip()}")
        return zip_tree(Path(out), extra={"META-INF/MANIFEST.MF":
                                          b"Manifest-Version: 1.0\r\nCreated-By: lake\r\n\r\n"})


def build_protocol(folder: Path | None = None) -> Path:
    """Compile the commit protocol into ``folder``/lake-spark.jar (replaced whole)."""
    folder = folder or jars_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / PROTOCOL_JAR
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(protocol_jar_bytes())
    partial.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(folder: Path | None = None, repo: str | None = None,
          say: Callable[[str], None] = print, jars: tuple[Jar, ...] | None = None) -> list[Path]:
    """The pinned ``jars`` (default: the S3A connector) in ``folder`` (default
    :func:`lib.jobs.jars.jars_dir`), fetched if missing or not the pinned file."""
    folder = folder or jars_dir()
    repo = (repo or os.environ.get(MAVEN_REPO_ENV) or MAVEN_CENTRAL).rstrip("/")
    folder.mkdir(parents=True, exist_ok=True)
    return [_fetch_one(jar, folder, repo, say) for jar in (jars or S3A_JARS)]


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
