"""The AWS side of the Lambda tests: one moto server per test module, reset for each test,
with the upload path's resources (:class:`tests.lambdas.test_upload_aws.Lake`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.aws_stubs import REGION, moto_server
from tests.lambdas.test_upload_aws import Lake


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server() as (_, url):
        yield url


@pytest.fixture
def lake(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    for k, v in {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
                 "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    yield Lake(max_receive=2)
