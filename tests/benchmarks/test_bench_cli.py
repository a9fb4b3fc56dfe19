"""`switchboard bench` prints one JSON document with the expected structure
(never asserting timings)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from runtime.cli import app

runner = CliRunner()


def test_quick_run_prints_and_writes_the_document(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = runner.invoke(
        app, ["bench", "--quick", "turn_overhead", "graph_scale", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert json.loads(out.read_text()) == document
    assert {"machine", "versions", "settings", "started_at", "ended_at", "duration_s"} <= set(
        document
    )
    assert document["machine"]["cores"] >= 1 and document["machine"]["cpu_model"]
    assert document["versions"]["langgraph"]
    assert document["settings"]["quick"] is True
    assert list(document["benchmarks"]) == ["turn_overhead", "graph_scale"]

    turn = document["benchmarks"]["turn_overhead"]
    assert turn["status"] == "ok", turn
    for name in ("memory", "sqlite"):
        figures = turn["checkpointers"][name]
        for variant in ("baseline", "graph", "session"):
            assert {"p50", "p90", "p99"} <= set(figures[variant])
            assert figures[variant]["n"] == turn["turns_per_variant"]
        assert set(figures["ratio_session_vs_baseline"]) == {"p50", "p90", "p99"}
    assert "redis" in turn["checkpointers"]
    assert turn["baseline"] and turn["goals"]

    scale = document["benchmarks"]["graph_scale"]
    assert scale["status"] == "ok", scale
    assert list(scale["sizes"]) == ["10", "100", "1000"]
    for entry in scale["sizes"].values():
        assert {"load_s", "check_s", "compile_s", "total_s", "peak_mb"} <= set(entry)
    assert isinstance(scale["growth_exponent"]["total_s"], float)


def test_unknown_benchmark_is_a_clear_error() -> None:
    result = runner.invoke(app, ["bench", "no_such_bench"])
    assert result.exit_code == 2
    assert "unknown benchmark(s) no_such_bench" in result.output
    assert "Traceback" not in result.output


def test_a_failing_benchmark_fails_the_command(monkeypatch: object) -> None:
    import benchmarks.harness as harness

    monkeypatch.setitem(harness.BENCHMARKS, "broken", "benchmarks.no_such_module")  # type: ignore[attr-defined]
    result = runner.invoke(app, ["bench", "broken"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["benchmarks"]["broken"]["status"] == "error"
    assert "No module named" in document["benchmarks"]["broken"]["reason"]
