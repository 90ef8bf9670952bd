"""The repository checkout the tooling works on: its templates, crawler definitions, named
queries, job versions and lock files. Tooling only: nothing shipped assumes a checkout."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
