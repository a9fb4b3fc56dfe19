"""Switchboard visual builder (Streamlit); see issue 6."""
