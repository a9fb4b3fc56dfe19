"""The builder app (Streamlit AppTest): select a node, edit it, see validation
follow, add a step from the palette, save, and find the change on disk with
the file's comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from schemas.loader import load_graph_file

APP = str(Path(__file__).resolve().parents[2] / "builder" / "app.py")
TIMEOUT = 120  # generous: the machine is shared; AppTest runs are not timed


@pytest.fixture
def app(dental_file: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("SWITCHBOARD_GRAPHS_DIR", str(dental_file.parent))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["graph"] = "dental-booking"
    at.run()
    assert not at.exception
    return at


def status(at: AppTest) -> str:
    return next(m.value for m in at.markdown if "dental-booking.yaml" in m.value)


def widget(elements: object, label: str) -> object:
    found = [w for w in elements if w.label == label]  # type: ignore[attr-defined]
    assert found, f"no widget labelled {label!r}"
    return found[0]


def pick(at: AppTest, node: str) -> None:
    widget(at.selectbox, "Edit").select(node).run()  # type: ignore[attr-defined]
    assert not at.exception
    assert any(f"`{node}`" in m.value for m in at.markdown)


def errors(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("⛔")]


def button(at: AppTest, label: str) -> None:
    widget(at.button, label).click().run()  # type: ignore[attr-defined]
    assert not at.exception


def test_opens_on_the_graph_and_lists_no_errors(app: AppTest) -> None:
    assert "saved" in status(app) and "unsaved" not in status(app)
    assert any("Valid" in s.value or "warning" in s.value for s in [*app.success, *app.warning])
    assert errors(app) == []


def test_edit_a_field_validate_and_save_keeps_comments(app: AppTest, dental_file: Path) -> None:
    before = dental_file.read_text("utf-8")
    pick(app, "hours")
    widget(app.text_area, "text *").input("We're open every weekday, 8 to 6.").run()
    assert "unsaved changes" in status(app)
    # clearing a required edge is an error on the node, listed with its code
    widget(app.selectbox, "next *").select("").run()
    assert any("hours" in e and "E1" in e for e in errors(app)), errors(app)
    assert any(b.label == "Save as draft" for b in app.button)
    widget(app.selectbox, "next *").select("hand_back").run()
    assert errors(app) == []
    button(app, "Save")
    assert "— saved" in status(app)
    after = dental_file.read_text("utf-8")
    assert "text: We're open every weekday, 8 to 6." in after
    kept = [line for line in before.splitlines() if line.lstrip().startswith("#")]
    assert kept and all(line in after.splitlines() for line in kept)
    # only the edited line differs
    changed = set(before.splitlines()) ^ set(after.splitlines())
    assert len(changed) == 2, changed


def test_add_a_step_between_two_nodes_fix_it_and_save(app: AppTest, dental_file: Path) -> None:
    widget(app.selectbox, "Kind").select("collect").run()  # type: ignore[attr-defined]
    widget(app.text_input, "Node id").input("ask_birth_date").run()  # type: ignore[attr-defined]
    widget(app.selectbox, "After node (optional)").select("greeting").run()  # type: ignore[attr-defined]
    button(app, "Add node")
    # the new node is selected, wired in, and its missing fields are errors
    assert any("`ask_birth_date`" in m.value for m in app.markdown)
    assert any("ask_birth_date" in e for e in errors(app)), errors(app)
    widget(app.text_input, "slot *").input("birth_date").run()  # type: ignore[attr-defined]
    widget(app.selectbox, "kind").select("date").run()  # type: ignore[attr-defined]
    widget(app.text_area, "prompt *").input("What is your date of birth, {clinic}?").run()  # type: ignore[attr-defined]
    assert any("Template variables" in c.value and "clinic" in c.value for c in app.caption)
    assert errors(app) == [], errors(app)
    button(app, "Save")
    loaded = load_graph_file(dental_file)
    assert loaded.spec is not None and loaded.ok
    node = loaded.spec.nodes["ask_birth_date"]
    assert node.type == "collect" and node.slot == "birth_date" and node.kind == "date"
    assert loaded.spec.nodes["greeting"].next == "ask_birth_date"  # type: ignore[union-attr]
    assert node.next == "route"
    assert "# Opening hours, read out as one line." in dental_file.read_text("utf-8")


def test_an_invalid_graph_saves_only_as_a_marked_draft(app: AppTest, dental_file: Path) -> None:
    pick(app, "hours")
    widget(app.selectbox, "next *").select("").run()  # type: ignore[attr-defined]
    assert not any(b.label == "Save" for b in app.button)
    button(app, "Save as draft")
    text = dental_file.read_text("utf-8")
    assert text.startswith("# switchboard: draft")
    assert "DRAFT" in status(app)
    assert not load_graph_file(dental_file).ok  # still loads with its errors


def test_graph_settings_form_edits_top_level_fields(app: AppTest, dental_file: Path) -> None:
    assert widget(app.selectbox, "Edit").value == "(graph settings)"  # type: ignore[attr-defined]
    widget(app.text_input, "name *").input("Bright Smiles bookings").run()  # type: ignore[attr-defined]
    button(app, "Save")
    assert "name: Bright Smiles bookings" in dental_file.read_text("utf-8")


def test_validation_panel_selects_the_node_of_a_finding(app: AppTest) -> None:
    pick(app, "hours")
    widget(app.selectbox, "next *").select("").run()  # type: ignore[attr-defined]
    widget(app.selectbox, "Edit").select("(graph settings)").run()  # type: ignore[attr-defined]
    shows = [b for b in app.button if b.label == "show"]
    assert shows
    shows[0].click().run()
    assert any("`hours`" in m.value for m in app.markdown)


def test_reconnect_an_edge_from_the_properties_panel(app: AppTest, dental_file: Path) -> None:
    pick(app, "route")
    box = widget(app.selectbox, "intent:hours (hours) → goes to")
    assert box.value == "hours"  # type: ignore[attr-defined]
    box.select("clarify").run()  # type: ignore[attr-defined]
    assert not app.exception
    assert widget(app.selectbox, "intent:hours (hours) → goes to").value == "clarify"  # type: ignore[attr-defined]
    button(app, "Save")
    loaded = load_graph_file(dental_file)
    assert loaded.spec is not None
    assert loaded.spec.nodes["route"].intents["hours"].next == "clarify"  # type: ignore[union-attr]
    assert "# Opening hours, read out as one line." in dental_file.read_text("utf-8")


def test_an_edge_clicked_on_the_canvas_opens_in_the_properties_panel(app: AppTest) -> None:
    from builder.views.canvas_view import _select
    from builder.views.session import KEY

    ed = app.session_state[KEY]
    _select(ed, "route|fallback", {"route": {}, "clarify": {}})
    assert (ed.selected, ed.selected_edge) == ("route", "fallback")
    app.run()
    assert any("chosen on the canvas" in c.value and "fallback" in c.value for c in app.caption)
