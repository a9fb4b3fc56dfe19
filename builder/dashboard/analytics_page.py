"""Dashboard page: analytics (being built)."""

import streamlit as st

st.title("Analytics")
