"""Switchboard's Streamlit app, started by `switchboard builder`: the graph
builder and the operations dashboard (Live, Calls, Analytics) as pages of one
app.

Run it with `switchboard builder` (or `streamlit run builder/app.py -- --graphs-dir DIR`).
Each page is its own script, so a page can also be run (and tested) alone.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent

PAGES = [
    st.Page(HERE / "editor_page.py", title="Builder", icon="🧩", url_path="builder", default=True),
    st.Page(HERE / "dashboard" / "live_page.py", title="Live", icon="📞", url_path="live"),
    st.Page(HERE / "dashboard" / "calls_page.py", title="Calls", icon="🗂️", url_path="calls"),
    st.Page(
        HERE / "dashboard" / "analytics_page.py", title="Analytics", icon="📈", url_path="analytics"
    ),
]

st.set_page_config(page_title="Switchboard", page_icon="☎️", layout="wide")
st.navigation(PAGES).run()
