"""The fast lane (lib/jobs/fast_lane.py, `lake upload --process`): small uploads processed
by the DuckDB engine right after they are accepted and queryable when it ends; routing by
size; the ledger deciding what is processed; a busy run lock; what it leaves to the batch."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import yaml

from lib.contracts.contract import ContractError, load_contract, parse_contract
from lib.jobs.fast_lane import DEFAULT_MAX_BYTES, MAX_BYTES_ENV, fast_lane_limit, run_fast_lane
from lib.ledger.records import ACCEPTED, ARCHIVED, FAILED
from lib.ledger.sqlite import open_ledger
from lib.tools import cli
from tests.helpers import REPO, SAMPLES, cli_query

SAMPLE = SAMPLES / "orders_2026-11-04_discounts.csv"
HEADER = ("order_id,customer_id,customer_email,product_sku,quantity,unit_price,currency,"
          "order_ts\n")


def _orders(path: Path, first: int, n: int = 3) -> Path:
    rows = [f"O-{first + i},C-1,a@b.co,sku-1,1,1.00,usd,2026-11-0{1 + i % 3}T10:00:00Z"
            for i in range(n)]
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_an_upload_with_process_is_archived_and_queryable_when_the_command_ends(
        tmp_path, capsys) -> None:
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", "--process",
                     str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "job orders_v2 (version 2, contract orders/2, duckdb engine)" in out
    assert "data-quality page: file://" in out
    [record] = open_ledger(lake).find("orders")
    assert record.status == ARCHIVED
    assert cli_query(lake, "SELECT count(*) AS n FROM clean.orders", capsys) == \
        f"n\n{record.clean}\n"


def test_an_upload_over_the_limit_waits_for_the_batch_run(tmp_path, capsys,
                                                          monkeypatch) -> None:
    monkeypatch.setenv(MAX_BYTES_ENV, "300")
    lake = tmp_path / "lk"
    small, big = _orders(tmp_path / "small.csv", 1, 1), _orders(tmp_path / "big.csv", 100, 20)
    assert small.stat().st_size <= 300 < big.stat().st_size
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", "--process",
                     str(small), str(big)]) == 0
    out = capsys.readouterr().out
    ledger = open_ledger(lake)
    by_name = {r.original_name: r for r in ledger.find("orders")}
    assert (by_name["small.csv"].status, by_name["big.csv"].status) == (ARCHIVED, ACCEPTED)
    assert (f"{by_name['big.csv'].upload_id}  waits for the batch run (over the fast lane's "
            "300 bytes): lake pipeline, or lake run orders") in out


def test_one_fast_lane_run_takes_every_small_accepted_upload_once(tmp_path, capsys) -> None:
    """A burst: twelve uploads accepted, then one run of the fast lane processes them all,
    each exactly once; a second run finds nothing to do."""
    lake = tmp_path / "lk"
    files = [str(_orders(tmp_path / f"f{i}.csv", 10 * i)) for i in range(12)]
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", *files]) == 0
    ledger = open_ledger(lake)
    ids = [r.upload_id for r in ledger.find("orders")]
    contract = load_contract("orders", 2)
    assert run_fast_lane(contract, 2, str(lake), ledger, ids) == 0
    assert {ledger.get(u).status for u in ids} == {ARCHIVED}
    runs = {ledger.get(u).run_id for u in ids}
    assert len(runs) == 1
    assert all(sum(h.to_status == "PROCESSING" for h in ledger.history(u)) == 1 for u in ids)
    assert run_fast_lane(contract, 2, str(lake), ledger, []) == 0  # nothing pending
    assert {ledger.get(u).run_id for u in ids} == runs
    assert cli_query(lake, "SELECT count(*) AS n FROM clean.orders", capsys) == "n\n36\n"


def test_a_busy_run_lock_leaves_the_upload_accepted_with_a_note(tmp_path, caplog) -> None:
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders",
                     str(_orders(tmp_path / "a.csv", 1))]) == 0
    ledger = open_ledger(lake)
    [record] = ledger.find("orders")
    waits: list[float] = []
    with ledger.run_lock("orders"), caplog.at_level(logging.WARNING):
        code = run_fast_lane(load_contract("orders", 2), 2, str(lake), ledger,
                             [record.upload_id], lock_wait_s=1.0, sleep=waits.append,
                             clock=iter([0.0, 0.5, 1.5]).__next__)
    assert code is None and len(waits) == 1
    assert ledger.get(record.upload_id).status == ACCEPTED
    note = ledger.history(record.upload_id)[-1]
    assert (note.from_status, note.to_status) == (ACCEPTED, ACCEPTED)
    assert note.note.startswith("fast lane: another run of orders held the run lock for 1 s (")
    assert note.note.endswith("); left ACCEPTED for the next run")
    assert any("left ACCEPTED for the next run" in r.getMessage() for r in caplog.records)


def test_a_file_the_engine_does_not_reproduce_is_failed_and_left_to_the_batch(tmp_path) -> None:
    """A data problem or a file the DuckDB engine refuses fails the upload as a run does;
    the fast lane never takes a FAILED upload again (the batch run retries it)."""
    lake = tmp_path / "lk"
    odd = tmp_path / "odd.csv"
    odd.write_text(HEADER + 'O-1,C-1,"a@b.co" x,sku-1,1,1.00,usd,2026-11-01T10:00:00Z\n',
                   encoding="utf-8")
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", "--process",
                     str(odd)]) == 1
    ledger = open_ledger(lake)
    [record] = ledger.find("orders")
    assert (record.status, record.error_code) == (FAILED, "engine.not_reproduced")
    before = len(ledger.history(record.upload_id))
    assert run_fast_lane(load_contract("orders", 2), 2, str(lake), ledger, []) == 0
    assert len(ledger.history(record.upload_id)) == before


def test_the_limit_comes_from_the_contract_then_the_environment() -> None:
    contract = load_contract("orders", 2)
    assert fast_lane_limit(contract, {}) == DEFAULT_MAX_BYTES == 64 << 20
    assert fast_lane_limit(contract, {MAX_BYTES_ENV: "0"}) == 0
    data = yaml.safe_load((REPO / "lib" / "contracts" / "orders" / "v2.yaml").read_text())
    assert fast_lane_limit(parse_contract({**data, "fast_lane_max_bytes": 10}, "x.yaml"),
                           {MAX_BYTES_ENV: "99"}) == 10
    with pytest.raises(ContractError, match=r"^x.yaml: fast_lane_max_bytes: expected a number "
                                            r"of bytes \(0 turns the fast lane off for the "
                                            r"dataset\), got -1$"):
        parse_contract({**data, "fast_lane_max_bytes": -1}, "x.yaml")
    with pytest.raises(Exception, match=r"LAKE_FAST_LANE_MAX_BYTES must be a number of bytes"):
        fast_lane_limit(contract, {MAX_BYTES_ENV: "lots"})


def test_a_run_out_of_memory_fails_the_upload_as_the_engines_fault_not_the_files(
        tmp_path, monkeypatch) -> None:
    """DuckDB given 1 MB: the upload fails with engine.resources (not a reason of the
    file), saying what ran out and that the batch run takes it; the batch's selection (every
    pending upload) includes it, the fast lane's does not."""
    from lib.jobs.duck_entry import MEMORY_ENV
    from lib.jobs.run import select_uploads

    monkeypatch.setenv(MEMORY_ENV, "1MB")
    lake = tmp_path / "lk"
    assert cli.main(["--lake-root", str(lake), "upload", "--dataset", "orders", "--process",
                     str(_orders(tmp_path / "m.csv", 1, 300))]) == 1
    ledger = open_ledger(lake)
    [record] = ledger.find("orders")
    assert (record.status, record.error_code) == (FAILED, "engine.resources")
    assert "the DuckDB engine ran out of memory (limit 1MB, $LAKE_DUCKDB_MEMORY)" in record.error
    assert record.error.endswith("nothing of it was published: the batch run (Spark) "
                                 "processes it")
    assert [r.upload_id for r in select_uploads(ledger, "orders", None)] == [record.upload_id]
    assert select_uploads(ledger, "orders", None, small_only=1 << 30) == []
