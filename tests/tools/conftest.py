"""Fixtures of the console's tests: a fresh lake and the console on it, through the
framework's test client at the console's own address (modules with a lake of their own
define ``lake`` themselves)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from lib.tools.console.app import create_app
from tests.helpers import CONSOLE_URL


@pytest.fixture
def lake(tmp_path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def client(lake) -> TestClient:
    return TestClient(create_app(lake, max_bytes=10_000, fast_lane=False), base_url=CONSOLE_URL)
