"""`lake jars`: the S3A connector is fetched once, only the pinned bytes are cached, and a
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
