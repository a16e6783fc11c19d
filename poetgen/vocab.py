"""Tokenizers: characters (default), jieba words, or sentencepiece pieces, behind one interface.

Ids 0-3 are always ``<pad> <bos> <eos> <unk>``. A tokenizer serialises to a JSON-ready dict that
travels inside every checkpoint, so sampling never needs the corpus.
"""

from __future__ import annotations

import base64
import tempfile
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from poetgen.errors import PoetgenError, unknown

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(4)
KINDS = ("char", "jieba", "sentencepiece")


class Tokenizer:
    """A token list plus a way to cut text into tokens."""

    kind = "base"

    def __init__(self, tokens: list[str]) -> None:
        if tuple(tokens[:4]) != SPECIALS:
            raise PoetgenError("vocabulary must start with <pad> <bos> <eos> <unk>")
        self.tokens = tokens
        self.index = {t: i for i, t in enumerate(tokens)}
        if len(self.index) != len(tokens):  # a tampered checkpoint: ids would not round-trip
            raise PoetgenError("vocabulary lists a token twice")

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, text: str) -> list[str]:
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        return [self.index.get(piece, UNK) for piece in self.split(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, skipping the special tokens."""
        return "".join(self.tokens[i] for i in ids if i >= len(SPECIALS))

    def unknown(self, text: str) -> list[str]:
        """Pieces of ``text`` that the vocabulary lacks (they would become ``<unk>``), in order."""
        return list(dict.fromkeys(p for p in self.split(text) if p not in self.index))

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens}


def _ranked(counts: Counter[str], min_freq: int, max_size: int | None) -> list[str]:
    # Sort by frequency, then by the token itself, so the same corpus always gives the same ids.
    # (a word-level corpus may contain the text "<unk>": it must not become a second <unk>)
    kept = sorted((t for t, n in counts.items() if n >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t))
    if max_size is not None:
        kept = kept[: max(0, max_size - len(SPECIALS))]
    return [*SPECIALS, *kept]  # frequency order: adaptive softmax clusters rely on it


class CharVocab(Tokenizer):
    kind = "char"

    def split(self, text: str) -> list[str]:
        return list(text)

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> CharVocab:
        return cls(_ranked(Counter(ch for t in texts for ch in t), min_freq, max_size))


class JiebaVocab(Tokenizer):
    """Word-level tokens cut by jieba; words outside the vocabulary become ``<unk>``."""

    kind = "jieba"

    def split(self, text: str) -> list[str]:
        import jieba

        jieba.setLogLevel(60)  # jieba prints a banner to stderr on first use
        return jieba.lcut(text, HMM=False)

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1, max_size: int | None = None) -> JiebaVocab:
        probe = cls(list(SPECIALS))
        return cls(_ranked(Counter(w for t in texts for w in probe.split(t)), min_freq, max_size))


class SentencePieceVocab(Tokenizer):
    """Unigram or BPE pieces; the trained model travels base64-encoded inside the checkpoint."""

    kind = "sentencepiece"

    def __init__(self, tokens: list[str], model: bytes) -> None:
        import sentencepiece as spm

        super().__init__(tokens)
        self.model = model
        self.sp = spm.SentencePieceProcessor(model_proto=model)

    def split(self, text: str) -> list[str]:
        return self.sp.encode(text, out_type=str)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([self.tokens[i] for i in ids if i >= len(SPECIALS)])

    def to_dict(self) -> dict:
        return {**super().to_dict(), "model": base64.b64encode(self.model).decode()}

    @classmethod
    def build(cls, texts: Iterable[str], vocab_size: int = 4000, model_type: str = "unigram") -> SentencePieceVocab:
        import sentencepiece as spm

        with tempfile.TemporaryDirectory() as tmp:
            corpus = Path(tmp) / "corpus.txt"
            corpus.write_text("\n".join(texts), encoding="utf-8")
            prefix = str(Path(tmp) / "sp")
            try:
                spm.SentencePieceTrainer.train(
                    input=str(corpus), model_prefix=prefix, vocab_size=vocab_size, model_type=model_type,
                    character_coverage=1.0, pad_id=0, bos_id=1, eos_id=2, unk_id=3,
                    hard_vocab_limit=False, minloglevel=2,
                )
            except RuntimeError as e:
                raise PoetgenError(f"sentencepiece training failed: {str(e).splitlines()[-1]}") from None
            model = Path(prefix + ".model").read_bytes()
        sp = spm.SentencePieceProcessor(model_proto=model)
        tokens = [*SPECIALS, *(sp.id_to_piece(i) for i in range(4, sp.get_piece_size()))]
        return cls(tokens, model)


def build_tokenizer(
    kind: str, texts: list[str], *, min_freq: int = 1, max_size: int | None = None
) -> Tokenizer:
    if kind == "char":
        return CharVocab.build(texts, min_freq, max_size)
    if kind == "jieba":
        return JiebaVocab.build(texts, min_freq, max_size)
    if kind == "sentencepiece":
        return SentencePieceVocab.build(texts, vocab_size=max_size or 4000)
    raise unknown("tokenizer", kind, list(KINDS))


def tokenizer_from_dict(data: dict) -> Tokenizer:
    if not isinstance(data, dict):
        raise PoetgenError("vocabulary in checkpoint is malformed")
    kind, tokens = data.get("kind"), data.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise PoetgenError("vocabulary in checkpoint is malformed")
    if kind == "char":
        return CharVocab(tokens)
    if kind == "jieba":
        return JiebaVocab(tokens)
    if kind == "sentencepiece":
        try:
            return SentencePieceVocab(tokens, base64.b64decode(data["model"], validate=True))
        except PoetgenError:
            raise
        except Exception:  # missing, not base64, or not a sentencepiece model (RuntimeError from C++)
            raise PoetgenError("sentencepiece model in checkpoint is malformed") from None
    raise PoetgenError(f"unknown tokenizer kind '{kind}' in checkpoint")
