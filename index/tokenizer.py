"""The embedding model's own tokenizer, read from its tokenizer.json (no torch needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tokenizers import Tokenizer

from index.model_files import ModelError, max_sequence_tokens

_SPECIAL_TOKENS = 2
"""[CLS] and [SEP], which every BERT-style input carries besides the text's own tokens."""


class ModelTokenizer:
    def __init__(self, tokenizer: Tokenizer, max_tokens: int) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        self.max_tokens = max_tokens
        """The most text tokens one model input can hold."""

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ModelTokenizer:
        path = model_dir / "tokenizer.json"
        if not path.is_file():
            raise ModelError(f"no tokenizer.json in {model_dir}; it is not a usable model folder")
        return cls(Tokenizer.from_file(str(path)), max_sequence_tokens(model_dir) - _SPECIAL_TOKENS)

    def token_spans(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [list(encoding.offsets) for encoding in encodings]

    def count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
