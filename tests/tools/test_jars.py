"""`lake jars`: the commit protocol compiles into a reproducible jar; the S3A connector is
fetched once, only the pinned bytes are cached, and a
wrong file or a failed download leaves nothing behind. (A `file://` folder plays Maven
Central.)"""

from __future__ import annotations

import hashlib

import pytest

from lib.jobs.jars import Jar
from lib.tools import jars


@pytest.fixture
def repo(tmp_path, monkeypatch):
    data = b"PK\x03\x04 not really a jar"
    jar = Jar("org.example", "thing", "1.0", hashlib.sha256(data).hexdigest())
    folder = tmp_path / "repo" / "org" / "example" / "thing" / "1.0"
    folder.mkdir(parents=True)
    (folder / "thing-1.0.jar").write_bytes(data)
    monkeypatch.setattr(jars, "S3A_JARS", (jar,))
    return (tmp_path / "repo").as_uri(), jar, data


def test_a_pinned_jar_is_fetched_once(repo, tmp_path) -> None:
    url, jar, data = repo
    said: list[str] = []
    [path] = jars.fetch(tmp_path / "cache", url, say=said.append)
    assert path.read_bytes() == data and said == [
        f"fetching org.example:thing:1.0 from {url}/org/example/thing/1.0/thing-1.0.jar"]
    said.clear()
    assert jars.fetch(tmp_path / "cache", url, say=said.append) == [path] and said == []
    # any pinned jar the same way (the publish benchmark's Iceberg runtime)
    assert jars.fetch(tmp_path / "other", url, say=said.append, jars=(jar,)) == [
        tmp_path / "other" / "thing-1.0.jar"]


def test_other_bytes_than_the_pinned_ones_are_refused_and_not_cached(repo, tmp_path,
                                                                     monkeypatch) -> None:
    url, jar, _ = repo
    monkeypatch.setattr(jars, "S3A_JARS", (Jar(jar.group, jar.artifact, jar.version, "0" * 64),))
    with pytest.raises(jars.JarFetchError, match=r"thing-1\.0\.jar: SHA-256 [0-9a-f]{64} is not "
                                                 r"the pinned 0{64}; nothing was cached"):
        jars.fetch(tmp_path / "cache", url, say=lambda _: None)
    assert list((tmp_path / "cache").iterdir()) == []


def test_a_failed_download_names_the_jar_and_the_url(repo, tmp_path) -> None:
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(jars.JarFetchError, match=r"could not fetch thing-1\.0\.jar from "
                                                 + missing):
        jars.fetch(tmp_path / "cache", missing, say=lambda _: None)
    assert list((tmp_path / "cache").iterdir()) == []


def test_the_commit_protocol_compiles_into_the_same_jar_each_time(tmp_path) -> None:
    import zipfile

    built = jars.build_protocol(tmp_path / "cache")
    assert built == tmp_path / "cache" / "lake-spark.jar"
    with zipfile.ZipFile(built) as zf:
        assert zf.namelist() == ["META-INF/MANIFEST.MF", "lake/spark/UploadFilesCommitProtocol.class"]
        assert zf.read("lake/spark/UploadFilesCommitProtocol.class")[:4] == b"\xca\xfe\xba\xbe"
    assert jars.protocol_jar_bytes() == built.read_bytes()  # reproducible: the release id holds
    assert not list((tmp_path / "cache").glob("*.part"))


def test_without_javac_the_build_says_what_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no javac anywhere
    with pytest.raises(jars.JarBuildError) as exc:
        jars.build_protocol(tmp_path / "cache")
    assert str(exc.value) == (
        "building the lake's commit protocol (jvm/) needs a JDK 17's javac, found neither on "
        "PATH: install a JDK 17 (e.g. apt-get install openjdk-17-jdk-headless) and retry")
    assert exc.value.code == "jars.build"


def test_a_compile_error_is_reported_with_javac_s_message(tmp_path) -> None:
    source = tmp_path / "jvm" / "lake"
    source.mkdir(parents=True)
    (source / "Broken.java").write_text("package lake; public class Broken { int x = ; }\n")
    with pytest.raises(jars.JarBuildError, match=r"(?s)javac failed on .*/jvm:\n.*Broken\.java:1: "
                                                 r"error: illegal start of expression"):
        jars.protocol_jar_bytes(tmp_path / "jvm")
