"""The harness's statistics and machine facts, on known data."""

from __future__ import annotations

import pytest

from benchmarks.graph_scale import generate_graph, graph_yaml, growth_exponent
from benchmarks.harness import (
    BENCHMARKS,
    UnknownBenchmark,
    cpu_model,
    distribution,
    memory_total_mb,
    percentile,
    ratio,
    resolve_names,
)
from benchmarks.stt_quality import word_errors
from schemas.checks import check_graph
from schemas.loader import load_graph_text


def test_percentiles_interpolate_linearly_between_ranks() -> None:
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 90) == pytest.approx(90.1)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0
    assert percentile([10.0, 0.0], 25) == pytest.approx(2.5)


def test_distribution_reports_every_figure_and_handles_empty() -> None:
    d = distribution([4.0, 1.0, 3.0, 2.0])
    assert d == {"n": 4, "min": 1.0, "p50": 2.5, "p90": 3.7, "p99": 3.97, "max": 4.0, "mean": 2.5}
    assert distribution([]) == {"n": 0}
    with pytest.raises(ValueError, match="empty"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_ratio_guards_zero() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None


def test_machine_facts_parse_proc_files() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: X\nmodel name\t: Example CPU 9000 @ 3GHz\n"
    assert cpu_model(cpuinfo) == "Example CPU 9000 @ 3GHz"
    assert memory_total_mb("MemTotal:       2048000 kB\nMemFree: 1 kB\n") == 2000.0
    assert memory_total_mb("nothing here") is None


def test_unknown_benchmark_names_the_known_ones() -> None:
    with pytest.raises(UnknownBenchmark, match=r"nope.*known: turn_overhead"):
        resolve_names(["nope"])
    assert resolve_names([]) == list(BENCHMARKS)
    assert resolve_names(["graph_scale", "turn_overhead"]) == ["turn_overhead", "graph_scale"]


def test_growth_exponent_recovers_known_powers() -> None:
    sizes = [10, 100, 1000]
    assert growth_exponent(sizes, [0.01 * n for n in sizes]) == pytest.approx(1.0)
    assert growth_exponent(sizes, [n**2 for n in sizes]) == pytest.approx(2.0)
    assert growth_exponent([10], [1.0]) is None


@pytest.mark.parametrize("n", [7, 10, 23])
def test_generated_graphs_have_exactly_n_nodes_and_pass_every_check(n: int) -> None:
    assert len(generate_graph(n)["nodes"]) == n
    loaded = load_graph_text(graph_yaml(n))
    assert loaded.spec is not None, [d.format() for d in loaded.diagnostics]
    found = check_graph(loaded.spec, loaded.source, tools=["calendar.find_slots"], graphs=[])
    assert [d.format() for d in found if d.severity == "error"] == []
    with pytest.raises(ValueError, match="at least 7"):
        generate_graph(6)


def test_word_errors_ignore_case_and_punctuation() -> None:
    assert word_errors("Can I come in next Tuesday", "can I come in next tuesday?") == {
        "substitutions": 0,
        "deletions": 0,
        "insertions": 0,
        "words": 6,
    }
    errs = word_errors("no thanks that is all", "no thanks to more")
    assert errs["words"] == 5
    assert errs["substitutions"] + errs["deletions"] == 3
