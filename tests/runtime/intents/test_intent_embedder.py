"""The embedding model: loading, checks, vectors, cache, the process singleton."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import runtime.intents.embedder as embedder_module
from runtime.intents.embedder import (
    ENV_VAR,
    Embedder,
    EmbedderError,
    ModelFiles,
    default_model_files,
    get_embedder,
    resolve_model_files,
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return get_embedder()


def test_vectors_are_unit_length_rows_in_input_order(embedder: Embedder) -> None:
    texts = ["book an appointment", "what's the weather like", "book an appointment"]
    vectors = embedder.embed(texts)
    assert vectors.shape == (3, embedder.dim) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert float(vectors[0] @ vectors[1]) < 0.5


def test_paraphrases_sit_closer_than_unrelated_text(embedder: Embedder) -> None:
    a, b, c = embedder.embed(
        ["I want to make an appointment", "book an appointment", "what's the capital of France"]
    )
    assert float(a @ b) > 0.6
    assert float(a @ c) < 0.3


def test_a_text_gets_the_same_vector_alone_or_in_a_padded_batch() -> None:
    fresh = Embedder(default_model_files(), cache_size=0)
    alone = fresh.embed(["book an appointment"])[0]
    long_text = "I would like to speak to a real person please, this is taking forever " * 3
    batched = fresh.embed([long_text, "book an appointment"])[1]
    assert float(alone @ batched) > 0.9999


def test_cache_serves_repeated_texts_and_evicts_least_recent() -> None:
    small = Embedder(default_model_files(), cache_size=2)
    small.embed(["one", "two"])
    assert small.cached("one") and small.cached("two")
    small.embed(["one"])  # "one" becomes most recent
    small.embed(["three"])
    assert small.cached("one") and small.cached("three")
    assert not small.cached("two")
    first = small.embed(["one"])
    first[0, 0] = 42.0  # callers get their own array, never the cached rows
    assert small.embed(["one"])[0, 0] != 42.0


def test_empty_batch_and_bad_items(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.dim)
    with pytest.raises(TypeError, match="item 1 is int"):
        embedder.embed(["fine", 3])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        embedder.embed("a string is not a batch")


def test_checksum_mismatch_is_refused() -> None:
    files = default_model_files()
    altered = ModelFiles(files.model, files.tokenizer, "altered", sha256="0" * 64)
    with pytest.raises(EmbedderError, match="sha256"):
        Embedder(altered)


def test_unreadable_tokenizer_and_model_are_clear_errors(tmp_path: Path) -> None:
    files = default_model_files()
    bad_tokenizer = tmp_path / "tokenizer.json"
    bad_tokenizer.write_text("not json", encoding="utf-8")
    with pytest.raises(EmbedderError, match="cannot read tokenizer"):
        Embedder(ModelFiles(files.model, bad_tokenizer, "x"))
    bad_model = tmp_path / "model.onnx"
    bad_model.write_bytes(b"\x00not an onnx graph")
    with pytest.raises(EmbedderError, match="cannot load ONNX model"):
        Embedder(ModelFiles(bad_model, files.tokenizer, "x"))


def test_env_override_directory(tmp_path: Path, embedder: Embedder) -> None:
    files = default_model_files()
    (tmp_path / "model.onnx").symlink_to(files.model)
    (tmp_path / "tokenizer.json").symlink_to(files.tokenizer)
    resolved = resolve_model_files({ENV_VAR: str(tmp_path)})
    assert resolved.model == tmp_path / "model.onnx"
    assert resolved.sha256 is None
    other = Embedder(resolved)
    np.testing.assert_allclose(
        other.embed(["hello there"]), embedder.embed(["hello there"]), atol=1e-6
    )


def test_env_override_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="is not a directory"):
        resolve_model_files({ENV_VAR: str(tmp_path / "missing")})
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(EmbedderError, match=r"has no tokenizer\.json"):
        resolve_model_files({ENV_VAR: str(tmp_path)})
    assert resolve_model_files({ENV_VAR: "  "}).sha256 == default_model_files().sha256


def test_model_loads_once_per_process_even_from_many_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from runtime.intents import IntentSet

    loads: list[Path] = []
    real_load = embedder_module._load_session

    def counting_load(path: Path, threads: int | None) -> Any:
        loads.append(path)
        return real_load(path, threads)

    monkeypatch.setattr(embedder_module, "_load_session", counting_load)
    monkeypatch.setattr(embedder_module, "_instance", None)
    start = threading.Barrier(8)
    got: list[Embedder] = []

    def worker() -> None:
        start.wait()
        got.append(get_embedder())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    IntentSet({"a": ["book an appointment"], "b": ["goodbye"]})
    IntentSet({"c": ["what are your hours"]})
    assert len(loads) == 1
    assert len(got) == 8 and all(e is got[0] for e in got)
    assert get_embedder() is got[0]
