"""Every page of the console in headless Chromium at 1280 and at 375 px wide: no page wider
than the screen, and no serious or critical accessibility violation as axe-core (from npm,
``make test`` installs it) reports them. Then an upload by keyboard alone, and what the upload
page does when no dataset is chosen or the network fails. Screenshots of every page at both
widths go to ``.artifacts/console/pages/``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from lib.ledger.sqlite import open_ledger
from lib.tools.console.app import create_app
from tests.helpers import REPO, SAMPLES, serving
from tests.tools.test_console_browser import RED, artifacts, browser_page, fill_colour

AXE = REPO / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 375)
GOOD = SAMPLES / "orders_2026-11-01.csv"
LEGACY = SAMPLES / "orders_2026-11-03_legacy_export.csv"


def axe_script() -> Path:
    if not AXE.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{AXE} is missing: make test installs axe-core with npm ci")
        pytest.skip("axe-core is not installed: make test installs it (npm ci) when npm exists")
    return AXE


def serious_violations(page: Any) -> list[str]:
    """axe-core's serious and critical violations on the page, one line each."""
    page.add_script_tag(path=str(axe_script()))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{', '.join(str(n['target']) for n in v['nodes'][:3])}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def overflow(page: Any) -> int:
    """How many CSS pixels the page is wider than the screen (0: none)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.fixture
def site(spark, processed_lake, tmp_path):  # noqa: ANN201 - pages only: the lake is shared
    """The console on the shared processed lake, with the paths of its pages."""
    ledger = open_ledger(processed_lake)
    quarantined = next(r for r in ledger.find("orders") if r.quarantined)
    run_id = sorted((processed_lake / "_reports" / "orders").glob("*.json"))[-1].stem
    pages = {"upload": "/", "uploads": "/ui/uploads",
             "upload-quarantined": f"/ui/uploads/{quarantined.upload_id}",
             "dataset-orders": "/ui/datasets/orders",
             "dataset-customers": "/ui/datasets/customers",
             "report": f"/reports/orders/{run_id}", "not-found": "/ui/nothing-here"}
    with serving(create_app(processed_lake, fast_lane=False)) as port:
        yield f"http://127.0.0.1:{port}", pages


def check_pages(page: Any, base: str, pages: dict[str, str], shots: Path) -> None:
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_load_state("load")
            page.screenshot(path=str(shots / f"{name}-{width}.png"), full_page=True)
            wider = overflow(page)
            if wider > 0:
                problems.append(f"{path} at {width} px: {wider} px wider than the screen")
            problems += [f"{path} at {width} px: {v}" for v in serious_violations(page)]
    assert not problems, "\n".join(problems)


def test_no_page_is_wider_than_the_screen_or_has_a_serious_accessibility_violation(
        site, tmp_path) -> None:
    base, pages = site
    with browser_page(tmp_path, bypass_csp=True) as page:
        check_pages(page, base, pages, artifacts("console", "pages"))


@pytest.fixture
def console_fast(tmp_path):  # noqa: ANN201 - the fast lane: no JVM
    with serving(create_app(tmp_path / "lake", fast_lane=True)) as port:
        yield f"http://127.0.0.1:{port}"


def tab_to(page: Any, element_id: str, most: int = 30) -> None:
    """Press Tab until the element has the focus, as a keyboard user moves."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} never took the focus in {most} presses of Tab")


def choose_by_keyboard(page: Any, key: str, path: Path) -> Any:
    """Tab to "Choose files", open the file chooser with ``key``, pick ``path``: its card."""
    tab_to(page, "choose")
    with page.expect_file_chooser() as chooser:
        page.keyboard.press(key)
    chooser.value.set_files([str(path)])
    return page.locator(f'.card[data-file="{path.name}"]')


def test_a_file_is_uploaded_with_the_keyboard_alone_then_its_pages_pass_the_checks(
        console_fast, tmp_path) -> None:
    """Tab to the dataset, pick it by typing, Tab to "Choose files", Enter opens the file
    chooser; the file goes through the fast lane to ARCHIVED. A refused file's page, and the
    pages of this lake, then pass the width and accessibility checks too."""
    from playwright.sync_api import expect

    with browser_page(tmp_path, bypass_csp=True) as page:
        # Chromium intercepts file choosers once a listener exists: one from the start, so
        # that the first Enter cannot open the native dialog instead
        page.on("filechooser", lambda _: None)
        page.goto(console_fast + "/")
        tab_to(page, "dataset")
        page.keyboard.type("orders")
        expect(page.locator("#dataset")).to_have_value("orders")
        card = choose_by_keyboard(page, "Enter", GOOD)
        expect(card).to_have_attribute("data-status", "ARCHIVED", timeout=60_000)
        archived_id = card.get_attribute("data-upload")
        expect(page.locator("#summary")).to_have_text("1 file (1.1 KiB): 1 loaded.")
        refused = choose_by_keyboard(page, "Space", LEGACY)
        expect(refused).to_have_attribute("data-status", "REJECTED", timeout=20_000)
        refused_id = refused.get_attribute("data-upload")
        page.screenshot(path=str(artifacts("console") / "keyboard-upload.png"), full_page=True)

        page.goto(console_fast + f"/ui/uploads/{refused_id}")
        expect(page.locator("#problem")).to_contain_text("'OrderNumber' for order_id")
        check_pages(page, console_fast, {"upload-rejected": f"/ui/uploads/{refused_id}",
                                         "upload-archived": f"/ui/uploads/{archived_id}",
                                         "dataset-fast-lane": "/ui/datasets/orders"},
                    artifacts("console", "pages"))


def test_without_a_dataset_nothing_is_sent_and_a_network_failure_can_be_retried(
        console_fast, tmp_path) -> None:
    from playwright.sync_api import expect

    with browser_page(tmp_path) as page:
        page.goto(console_fast + "/")
        page.set_input_files("#files", [str(GOOD)])  # no dataset chosen
        expect(page.locator("#notice")).to_contain_text("Choose a dataset first")
        expect(page.locator(".card")).to_have_count(0)

        page.select_option("#dataset", "orders")
        page.route("**/uploads", lambda route: route.abort())  # the console is unreachable
        page.set_input_files("#files", [str(GOOD)])
        card = page.locator(f'.card[data-file="{GOOD.name}"]')
        expect(card).to_have_attribute("data-status", "error", timeout=10_000)
        expect(card.locator(".reason")).to_contain_text("could not be reached")
        assert fill_colour(card) == RED
        expect(page.locator("#summary")).to_have_text("1 file (1.1 KiB): 1 not sent.")

        page.unroute("**/uploads")
        card.locator("button.retry").click()
        expect(page.locator(f'.card[data-file="{GOOD.name}"]')).to_have_attribute(
            "data-status", "ARCHIVED", timeout=60_000)
        expect(page.locator(".card")).to_have_count(1)  # the retry replaced the failed card
        first_id = page.locator(".card").get_attribute("data-upload")
        page.locator("button.remove").click()
        expect(page.locator(".card")).to_have_count(0)
        expect(page.locator("#summary")).to_have_text("")

        page.set_input_files("#files", [str(GOOD)])  # the same bytes again
        again = page.locator(f'.card[data-file="{GOOD.name}"]')
        expect(again).to_have_attribute("data-status", "REJECTED", timeout=20_000)
        expect(again.locator(".reason")).to_contain_text("The same bytes were accepted before.")
        again.locator("a.original").click()
        expect(page).to_have_url(f"{console_fast}/ui/uploads/{first_id}")
        expect(page.locator("button.reprocess")).to_be_visible()


def test_a_contracts_quality_thresholds_show_on_the_upload_dataset_and_upload_pages(
        tmp_path, monkeypatch) -> None:
    """orders with ``quality: {quarantined: {warn: 0.5, fail: 0.8}}``: the upload page says
    the thresholds, the sample (64% of its rows quarantined) is loaded with a quality
    warning on its card and its page, and the dataset page lists the thresholds and draws
    them on the trend chart. The screenshots are the ones docs/console.md shows."""
    from dataclasses import replace

    from playwright.sync_api import expect

    from lib.contracts.contract import Threshold, load_contract

    thresholds = (Threshold("quarantined", warn=0.5, fail=0.8),)

    def with_quality(dataset: str, version: int | None = None):  # noqa: ANN202
        return replace(load_contract(dataset, version), quality=thresholds)

    monkeypatch.setattr("lib.tools.console.app.load_contract", with_quality)  # the pages
    monkeypatch.setattr("lib.jobs.execute.load_contract", with_quality)  # the run
    shots = artifacts("console", "docs")
    with serving(create_app(tmp_path / "lake", fast_lane=True)) as port, \
            browser_page(tmp_path) as page:
        base = f"http://127.0.0.1:{port}"
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(base + "/")
        page.select_option("#dataset", "orders")
        expect(page.locator("#offer-orders")).to_contain_text(
            "Thresholds: a warning above 50% of an upload's rows quarantined, the upload fails "
            "above 80%.")
        page.set_input_files("#files", [str(GOOD), str(LEGACY)])
        card = page.locator(f'.card[data-file="{GOOD.name}"]')
        expect(card).to_have_attribute("data-status", "ARCHIVED", timeout=60_000)
        expect(card.locator(".warning")).to_contain_text(
            "quality: 9 of the 14 rows read (64.3%) quarantined, above the warn threshold")
        expect(page.locator(f'.card[data-file="{LEGACY.name}"]')).to_have_attribute(
            "data-status", "REJECTED")
        page.screenshot(path=str(shots / "upload.png"), full_page=True)

        page.goto(base + "/ui/datasets/orders")
        expect(page.locator("#thresholds")).to_contain_text("quarantined rows")
        expect(page.locator('#trend line[data-level="warn"]')).to_have_count(1)
        expect(page.locator('#trend line[data-level="fail"]')).to_have_count(1)
        page.screenshot(path=str(shots / "dataset.png"), full_page=False)

        page.goto(base + "/ui/uploads")
        page.screenshot(path=str(shots / "uploads.png"), full_page=True)
        page.locator(f'#uploads a:has-text("{GOOD.name}")').click()
        expect(page.locator("#warnings")).to_contain_text("above the warn threshold")
        expect(page.locator("button.reprocess")).to_be_visible()
        page.screenshot(path=str(shots / "upload-detail.png"))
        page.locator("#quarantined").screenshot(path=str(shots / "quarantined-rows.png"))
        page.set_viewport_size({"width": 375, "height": 800})
        page.goto(base + "/")
        page.select_option("#dataset", "orders")
        page.screenshot(path=str(shots / "upload-375.png"))
