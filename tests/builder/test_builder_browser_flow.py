"""The builder end to end in real Chromium (issue 6): open the example graph,
add a "date of birth" step, connect it on the canvas, see and fix the
validation findings it causes, save, commit, and see the semantic diff; the
file on disk keeps its comments. Playwright waits for what the page shows
(generous timeouts only stop a hung run); no fixed sleeps."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from schemas.loader import load_graph_file
from tests.builder.browser import CHROMIUM, CHROMIUM_ARGS, UI_WAIT_MS, artifacts_dir, serve_builder
from tests.builder.conftest import commented_dental_text

CANVAS = "iframe[title='streamlit_flow.streamlit_flow']"
NEW = "ask_birth_date"
#: Tries at opening a selectbox, each waiting this long for its option.
CHOOSE_ATTEMPTS = 5
CHOOSE_WAIT_MS = 15_000


def _choose(page: Any, label: str, option: str | re.Pattern[str]) -> None:
    """Pick an option of the visible selectbox labelled `label`. A Streamlit
    rerun that lands just after the click replaces the widget and closes its
    list (or detaches the option being clicked), so the list is opened again."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    wanted = page.get_by_role("option", name=option).first
    for _ in range(CHOOSE_ATTEMPTS):
        page.get_by_label(label, exact=True).locator("visible=true").first.click()
        try:
            wanted.wait_for(state="visible", timeout=CHOOSE_WAIT_MS)
            # A rerun may also detach the option mid-click: try again then.
            wanted.click(timeout=CHOOSE_WAIT_MS)
        except PlaywrightTimeoutError:
            continue
        return
    raise AssertionError(f"the {label!r} list never showed an option matching {option!r}")


def _type(page: Any, label: str, text: str) -> None:
    """Type into the visible text box labelled `label` and commit it (Tab)."""
    box = page.get_by_label(label, exact=True).locator("visible=true").first
    box.fill(text)
    box.press("Tab")


def _drag_edge(page: Any, source: str, target: str) -> None:
    """Draw an edge on the canvas from `source`'s handle to `target`'s."""
    canvas = page.frame_locator(CANVAS).last
    start = canvas.locator(f'.react-flow__node[data-id="{source}"] .react-flow__handle.source')
    end = canvas.locator(f'.react-flow__node[data-id="{target}"] .react-flow__handle.target')
    a, b = start.bounding_box(timeout=UI_WAIT_MS), end.bounding_box(timeout=UI_WAIT_MS)
    assert a is not None and b is not None
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=12)
    page.mouse.up()


def _node_shows(page: Any, node: str, text: str) -> None:
    """Wait until the canvas (the one mounted last) shows `text` on `node`: then
    the canvas that is dragged on is the one drawn for the latest edit."""
    from playwright.sync_api import expect

    canvas = page.frame_locator(CANVAS).last
    expect(canvas.locator(f'.react-flow__node[data-id="{node}"]')).to_contain_text(text)


def _edge(page: Any, source: str, label: str) -> Any:
    return page.frame_locator(CANVAS).last.locator(f'[data-testid="rf__edge-{source}|{label}"]')


@pytest.mark.usefixtures("git_env")
def test_add_connect_fix_save_commit_and_diff_in_chromium(repo: Path, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    graph = repo / "graphs" / "dental-booking.yaml"
    before = graph.read_text("utf-8")
    assert before == commented_dental_text()
    artifacts = artifacts_dir(tmp_path)
    expect.set_options(timeout=UI_WAIT_MS)
    with serve_builder(graph.parent, tmp_path) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1700, "height": 1100})
            page.set_default_timeout(UI_WAIT_MS)
            page.goto(f"{url}/?graph=dental-booking", timeout=UI_WAIT_MS)
            canvas = page.frame_locator(CANVAS).last
            canvas.get_by_text("greeting", exact=True).first.wait_for()
            status = page.get_by_text(re.compile(r"dental-booking\.yaml — "))
            expect(status).to_contain_text("— saved")

            # 1. add a collect step from the palette (not wired yet)
            page.get_by_role("tab", name="Add node").click()
            _choose(page, "Kind", re.compile(r"^collect"))
            _type(page, "Node id", NEW)
            page.get_by_role("button", name="Add node").click()
            canvas.get_by_text(NEW, exact=True).first.wait_for()
            expect(status).to_contain_text("unsaved changes")

            # 2. its form: slot, kind and prompt; the missing edge is still an error
            page.get_by_role("tab", name="Properties").click()
            expect(page.get_by_text(f"{NEW} · collect")).to_be_visible()
            props = page.get_by_role("tabpanel", name="Properties")
            _choose(page, "kind", "date")
            _type(page, "slot *", "birth_date")
            expect(props.get_by_text("field 'slot' is required")).to_have_count(0)
            _type(page, "prompt *", "What is your date of birth?")
            expect(props.get_by_text("field 'prompt' is required")).to_have_count(0)
            expect(page.get_by_label("kind", exact=True)).to_have_value("date")
            page.get_by_role("tab", name="Validation").click()
            findings = page.get_by_role("tabpanel", name="Validation")
            expect(findings.get_by_text("E110")).to_have_count(1)
            expect(findings.get_by_text("'next' is required")).to_be_visible()
            expect(page.get_by_role("button", name="Save as draft")).to_be_visible()

            # 3. connect it on the canvas: it leads to route ... but nothing reaches it
            _node_shows(page, NEW, "1 error")
            _drag_edge(page, NEW, "route")
            expect(_edge(page, NEW, "next")).to_have_count(1)
            expect(findings.get_by_text("W202")).to_have_count(1)
            expect(findings.get_by_text(f"node '{NEW}' can never be reached")).to_be_visible()
            expect(findings.get_by_text("E110")).to_have_count(0)
            # ... so greeting leads to it (greeting's `next` moves from route to it)
            _node_shows(page, NEW, "2 warnings")
            _drag_edge(page, "greeting", NEW)
            expect(findings.get_by_text("W202")).to_have_count(0)
            expect(findings.get_by_text("0 error(s)", exact=False)).to_be_visible()
            _node_shows(page, NEW, "1 warning")

            # 4. save (a valid graph: a plain Save, not a draft)
            page.get_by_role("button", name="Save", exact=True).click()
            expect(page.get_by_text("Saved dental-booking.yaml")).to_be_visible()
            expect(status).to_contain_text("— saved")

            # 5. commit with a message
            page.get_by_role("tab", name="Versions").click()
            _type(page, "Commit message", "Ask for the caller's date of birth")
            page.get_by_role("button", name="Commit", exact=True).click()
            expect(page.get_by_text(re.compile("Committed [0-9a-f]+: Ask for the"))).to_be_visible()

            # 6. the semantic diff against the first version
            _choose(page, "From", re.compile("first version"))
            page.get_by_role("button", name="Show differences").click()
            diff = page.get_by_text(f"+ node {NEW} (collect) added")
            expect(diff).to_be_visible()
            for line in (
                f"+ edge greeting --next--> {NEW}",
                f"+ edge {NEW} --next--> route",
                "- edge greeting --next--> route",
            ):
                expect(page.locator("code").filter(has_text=line).first).to_be_visible()
            # the added node is highlighted on the canvas (green border)
            node = page.frame_locator(CANVAS).last.locator(f'.react-flow__node[data-id="{NEW}"]')
            expect(node).to_have_css("border-top-color", "rgb(22, 163, 74)")
            shot = artifacts / "builder-flow-canvas.png"
            page.locator(CANVAS).last.screenshot(path=str(shot))
            page.screenshot(path=str(artifacts / "builder-flow-page.png"), full_page=True)
            print(f"canvas screenshot: {shot}")
        except Exception:
            failed = artifacts / "builder-flow-failure.png"
            page.screenshot(path=str(failed), full_page=True)
            print(f"failure screenshot: {failed}")
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000

    # 7. the file on disk: the new step is there, wired in, and every comment survived
    after = graph.read_text("utf-8")
    comments = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert comments and all(line in after.splitlines() for line in comments)
    assert "    slot: day  # the caller's preferred day" in after.splitlines()
    loaded = load_graph_file(graph)
    assert loaded.spec is not None and loaded.ok, loaded.diagnostics
    node_spec = loaded.spec.nodes[NEW]
    assert (node_spec.type, node_spec.slot, node_spec.kind) == ("collect", "birth_date", "date")  # type: ignore[union-attr]
    assert node_spec.next == "route"  # type: ignore[union-attr]
    assert loaded.spec.nodes["greeting"].next == NEW  # type: ignore[union-attr]
