"""Dashboard page: live (being built)."""

import streamlit as st

st.title("Live")
