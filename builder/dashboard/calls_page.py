"""Dashboard page: calls (being built)."""

import streamlit as st

st.title("Calls")
