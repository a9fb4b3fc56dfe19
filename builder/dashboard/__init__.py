"""The operations dashboard: Live, Calls and Analytics pages and their data access."""
