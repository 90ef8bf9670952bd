"""The console in a real browser: headless Chromium (Debian's ``chromium`` package) driven
by Playwright. Two files dropped on the upload page (one good, one refused), the refusal
shown with its reason, "Process now", the good file followed live to ARCHIVED, then its
run's data-quality report with its chart and reason counts. Screenshots go to
``.artifacts/console/`` (``$LAKE_TEST_ARTIFACTS``)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from lib.tools.console.app import create_app
from tests.helpers import REPO, SAMPLES, serving

GOOD = SAMPLES / "orders_2026-11-01.csv"
REFUSED = SAMPLES / "orders_2026-11-03_legacy_export.csv"
RED, AMBER, GREEN = "rgb(207, 34, 46)", "rgb(191, 135, 0)", "rgb(26, 127, 55)"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("no Chromium: install Debian's package (sudo apt-get install -y chromium);"
                    " .ci/run installs it in CI")
    return found


@pytest.fixture
def console(spark, tmp_path):  # noqa: ANN201 - the job runs in this process's session
    yield from _serve(tmp_path / "lake")


@pytest.fixture
def console_without_runs(tmp_path):  # noqa: ANN201
    yield from _serve(tmp_path / "lake")


@contextmanager
def browser_page(tmp_path: Path, *, bypass_csp: bool = False) -> Iterator[Any]:
    """A page of headless Chromium with a fresh profile, closed afterwards; ``bypass_csp``
    lets a test inject a checker's script (axe-core) into pages whose policy forbids it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=chromium(), headless=True,
            args=CHROMIUM_ARGS, bypass_csp=bypass_csp)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def artifacts(*parts: str) -> Path:
    """A folder for screenshots under ``.artifacts/`` (``$LAKE_TEST_ARTIFACTS``)."""
    folder = Path(os.environ.get("LAKE_TEST_ARTIFACTS", REPO / ".artifacts")).joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fill_colour(card: Any) -> str:
    """The colour of a card's progress bar."""
    return card.locator(".bar > span").evaluate("e => getComputedStyle(e).backgroundColor")


def _serve(lake: Path, fast_lane: bool = False):  # noqa: ANN202
    with serving(create_app(lake, fast_lane=fast_lane)) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def console_with_fast_lane(tmp_path):  # noqa: ANN201 - the default of lake serve
    yield from _serve(tmp_path / "lake", fast_lane=True)


def test_a_dropped_file_goes_through_the_fast_lane_to_archived_with_its_report(
        console_with_fast_lane, tmp_path) -> None:
    """The console's default: a small accepted file is processed at once (the DuckDB
    engine), followed live to ARCHIVED without pressing anything, its card linking to its
    run's report, which names the engine."""
    from playwright.sync_api import expect

    with browser_page(tmp_path) as page:
        page.goto(console_with_fast_lane + "/")
        page.select_option("#dataset", "orders")
        page.set_input_files("#files", [str(GOOD)])
        good = page.locator(f'.card[data-file="{GOOD.name}"]')
        expect(good).to_have_attribute("data-status", "ARCHIVED", timeout=60_000)
        expect(good.locator(".counts")).to_contain_text("read 14, clean 4, quarantined 9")
        good.locator("a.report").click()
        expect(page.locator('[data-count="rows_read"]')).to_have_text("14")
        expect(page.locator("body")).to_contain_text("duckdb")


def test_drop_two_files_process_and_read_the_report(console, tmp_path) -> None:
    from playwright.sync_api import expect

    shots = artifacts("console")
    with browser_page(tmp_path) as page:
        page.goto(console + "/")
        expect(page.locator("#process")).to_be_disabled()  # no dataset chosen yet
        page.select_option("#dataset", "orders")
        expect(page.locator("#offer-orders")).to_contain_text("CSV with a header row")
        page.set_input_files("#files", [str(GOOD), str(REFUSED)])
        good = page.locator(f'.card[data-file="{GOOD.name}"]')
        refused = page.locator(f'.card[data-file="{REFUSED.name}"]')
        expect(refused).to_have_attribute("data-status", "REJECTED", timeout=20_000)
        # plain words first, then what to do, the closest header names, the code last
        expect(refused.locator(".reason")).to_contain_text(
            "The header lacks columns the contract requires. What to do: add or rename")
        expect(refused.locator(".reason")).to_contain_text("'OrderNumber' for order_id")
        expect(refused.locator(".reason code")).to_have_text("file.missing_columns")
        expect(refused.locator("button.retry")).to_be_visible()
        expect(good).to_have_attribute("data-status", "ACCEPTED", timeout=20_000)
        expect(good.locator(".percent")).to_have_text("100% of 1.1 KiB")
        assert fill_colour(refused) == RED and fill_colour(good) == AMBER
        expect(page.locator("#summary")).to_have_text(
            "2 files (1.2 KiB): 1 accepted, 1 rejected.")
        page.screenshot(path=str(shots / "1-checked.png"), full_page=True)

        page.click("#process")
        expect(page.locator("#process")).to_be_disabled()  # while the run goes
        expect(page.locator("#run-status")).to_contain_text("orders_v2", timeout=10_000)
        expect(good).to_have_attribute("data-status", "ARCHIVED", timeout=180_000)
        expect(good.locator(".counts")).to_contain_text("read 14, clean 4, quarantined 9")
        expect(page.locator("#run-status")).to_have_attribute("data-outcome", "succeeded",
                                                              timeout=30_000)
        expect(page.locator("#run-status")).to_contain_text(
            "1 upload processed; 14 rows read, 4 clean, 9 quarantined")
        expect(page.locator("#process")).to_be_enabled()
        assert fill_colour(good) == GREEN
        expect(page.locator("#summary")).to_have_text("2 files (1.2 KiB): 1 loaded, 1 rejected.")
        page.screenshot(path=str(shots / "2-archived.png"), full_page=True)

        good.locator("a.report").click()
        expect(page.locator("svg#reasons")).to_be_visible()
        expect(page.locator('[data-count="rows_read"]')).to_have_text("14")
        expect(page.locator('[data-reason="order_id.conflict"]')).to_have_text("2")
        page.screenshot(path=str(shots / "3-report.png"), full_page=True)


def test_hostile_names_and_values_run_no_script_on_any_page(console_without_runs,
                                                            tmp_path) -> None:
    """A file whose name is markup, dropped on the upload page, and quarantined values that
    are markup: every page shows them as text and no script of theirs runs (a dialog would
    open)."""
    from playwright.sync_api import expect

    from tests.tools.test_console_security import HOSTILE_VALUE, quarantine_file

    name = '"><img src=x onerror=alert(1)><svg onload=alert(2)>.csv'
    hostile = tmp_path / "files" / name
    hostile.parent.mkdir()
    hostile.write_bytes(GOOD.read_bytes())
    dialogs: list[str] = []
    with browser_page(tmp_path) as page:
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(console_without_runs + "/")
        page.select_option("#dataset", "orders")
        page.set_input_files("#files", [str(hostile)])
        card = page.locator(".card").first
        expect(card).to_have_attribute("data-status", "ACCEPTED", timeout=20_000)
        expect(card.locator("a.name")).to_have_text(name)
        upload_id = card.get_attribute("data-upload")
        quarantine_file(tmp_path / "lake", upload_id, [HOSTILE_VALUE, name])
        for path in ("/ui/uploads", f"/ui/uploads/{upload_id}", "/ui/datasets/orders",
                     f"/ui/uploads?dataset={name}"):
            page.goto(console_without_runs + path)
            page.wait_for_load_state("load")
        page.goto(console_without_runs + f"/ui/uploads/{upload_id}")
        expect(page.locator("h1")).to_have_text(name)
        expect(page.locator("#quarantined")).to_contain_text(HOSTILE_VALUE)
        page.wait_for_timeout(300)
    assert dialogs == []
