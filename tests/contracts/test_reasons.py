"""Every reason code has a plain-words meaning and what to do, in one catalogue
(lib/contracts/reasons.py): the codes the docs name, and every row code a bundled contract
produces."""

from __future__ import annotations

import re

import pytest

from lib.contracts.contract import available_contracts, load_contract
from lib.contracts.reasons import RUN_REASONS, UPLOAD_REASONS, explain, what_to_do
from tests.helpers import REPO

CODE = re.compile(r"`((?:file|run|engine|quality)\.[a-z_]+)`")
NOT_CODES = {"engine.py", "run.py"}  # module names in the docs


def _documented() -> set[str]:
    texts = [(REPO / "README.md").read_text(encoding="utf-8"),
             *(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))]
    return {m for text in texts for m in CODE.findall(text)} - NOT_CODES


def test_every_code_the_docs_name_is_explained() -> None:
    documented = _documented()
    assert len(documented) >= 20
    assert sorted(c for c in documented if explain(c) is None) == []


def test_every_upload_and_run_code_of_the_catalogue_is_documented() -> None:
    assert sorted((set(UPLOAD_REASONS) | set(RUN_REASONS)) - _documented()) == []


@pytest.mark.parametrize("ref", [(d, v) for d, vs in available_contracts().items() for v in vs])
def test_every_row_code_a_bundled_contract_produces_is_explained(ref) -> None:
    contract = load_contract(*ref)
    missing = sorted(c.code for c in contract.checks() if explain(c.code) is None)
    assert missing == []


def test_a_row_code_names_its_column() -> None:
    assert what_to_do("customer_email.format") == (
        "customer_email does not have the expected form; what to do: write customer_email "
        "in the form the contract gives (a date as YYYY-MM-DD, an e-mail as name@domain ...)")
    assert explain("row.malformed").action.startswith("fix the line")
    assert explain("nope") is None and explain("a.nope") is None and what_to_do(None) is None


def test_the_cli_says_what_a_refusal_means_and_what_to_do(tmp_path, capsys) -> None:
    from lib.tools import cli

    lake = str(tmp_path / "lk")
    legacy = REPO / "samples" / "orders" / "orders_2026-11-03_legacy_export.csv"
    assert cli.main(["--lake-root", lake, "upload", "--dataset", "orders", str(legacy)]) == 1
    out = capsys.readouterr().out
    todo = ("(the header lacks columns the contract requires; what to do: add or rename the "
            "missing columns (the message lists them and the columns found))")
    assert out.splitlines()[-1] == f"    {todo}"
    uid = out.split()[0]
    assert cli.main(["--lake-root", lake, "status", uid]) == 0
    assert f"{'what it means:':<20}{todo[1:-1]}" in capsys.readouterr().out
