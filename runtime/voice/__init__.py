"""The streaming voice runtime: audio in, graph turns, audio out, with barge-in."""
