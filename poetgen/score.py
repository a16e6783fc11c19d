"""Score text under a language model: NLL, perplexity and bits per character, line by line.

What is scored (the numbers are per real character of the text):

* **Targets.** A line x1..xn is read as ``<bos> x1 .. x(n-1)`` and each xi is scored given what
  comes before it: ``nll = -Σ log p(xi | <bos>, x<i)`` (nats, summed over the line).
  ``<eos>`` is **not** scored, so ``chars`` counts only characters of the text. (The training
  loss and ``evaluate.lm_nll`` include ``<eos>``; the two differ by the cost of predicting the end.)
* **Out-of-vocabulary characters** (those the checkpoint's vocabulary lacks) are counted in
  ``oov`` and listed in ``unknown``, and **excluded** from ``nll`` and ``chars``: the model still
  reads them as ``<unk>`` so later positions keep their place, but nothing ever asks it for the
  probability of ``<unk>``, which would reward a model for calling every rare character "unknown".
  Compare perplexities only between models with the same OOV count on the same text.
* **Word or piece tokenizers** (jieba, sentencepiece): the NLL is summed over in-vocabulary pieces
  and divided by the characters those pieces cover (sentencepiece's ``▁`` marker is not a
  character); an OOV piece counts all its characters as ``oov``.
* **Conditional models** need a category for each line. ``category=`` (a name from the
  checkpoint's categories) fixes it for every line. Otherwise a poem model (tang/songci) uses the
  form of the line's text when the model knows it: the exact form (五绝 七绝 五律 七律), or for a
  fragment whose lines all have 5 (7) characters, 五绝 (七绝) up to 4 lines and 五律 (七律) up to
  8. When the category cannot be told from the text — any names model without ``category=``,
  poems of another shape — the line is scored under the **mixture** of all categories with equal
  weight, ``p(x) = (1/C) Σ_c p(x | c)``, a proper probability that needs no side information
  (``category=MIXTURE`` asks for it on every line). ``LineScore.category`` says which was used
  (``None``: mixture or an unconditional model). The mixture costs C forward passes per line.
* **Input.** Lines are NFC-normalised and stripped; blank lines are skipped (``LineScore.line``
  keeps the 1-based input line number). For poem models, ASCII punctuation becomes full-width and
  spaces are dropped, exactly as the training corpus was cleaned. The script is not converted: a
  simplified-script model reads traditional characters as OOV where they differ.

Lines are read in chunks, sorted by length within a chunk to batch them with little padding, and
returned in input order; long lines are run through the network in windows with the recurrent
state carried over, so memory stays bounded whatever the input.
"""

from __future__ import annotations

import itertools
import math
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from poetgen import paths
from poetgen.checkpoint import Checkpoint
from poetgen.corpora import serves
from poetgen.data import pad
from poetgen.errors import PoetgenError, unknown
from poetgen.styles import style_index
from poetgen.verse import WIDTH_NAME, clean_marks, detect_form, nearest_form, split_lines
from poetgen.vocab import BOS, PAD, SentencePieceVocab

MIXTURE = "*"  # category=MIXTURE: score every line under the equal-weight mixture of all categories
CHUNK_BATCHES = 8  # lines are sorted by length within chunks of this many batches
WINDOW_TOKENS = 1 << 16  # rows × time steps run through the network at once

# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class LineScore:
    """The score of one input line."""

    line: int  # 1-based line number in the input
    text: str  # the text as scored (after normalisation)
    nll: float  # nats, summed over the scored characters
    chars: int  # characters scored
    oov: int  # out-of-vocabulary characters: read as <unk>, never scored
    unknown: str = ""  # the distinct OOV characters, in order of appearance
    category: str | None = None  # the category conditioned on; None: mixture or unconditional

    @property
    def nll_per_char(self) -> float | None:
        return self.nll / self.chars if self.chars else None

    @property
    def perplexity(self) -> float | None:
        per = self.nll_per_char
        return math.exp(min(per, 700.0)) if per is not None else None

    @property
    def bits_per_char(self) -> float | None:
        per = self.nll_per_char
        return per / math.log(2) if per is not None else None

    def to_dict(self) -> dict:
        return {
            "line": self.line, "text": self.text, "category": self.category, "nll": self.nll,
            "chars": self.chars, "oov": self.oov, "unknown": self.unknown, "nll_per_char": self.nll_per_char,
            "perplexity": self.perplexity, "bits_per_char": self.bits_per_char,
        }


def summarize(scores: Iterable[LineScore]) -> dict:
    """Corpus-level numbers: total NLL over total characters (not a mean of per-line ratios)."""
    lines = chars = oov = 0
    nll = 0.0
    unknown_chars: dict[str, None] = {}
    for s in scores:
        lines += 1
        chars += s.chars
        oov += s.oov
        nll += s.nll
        unknown_chars.update(dict.fromkeys(s.unknown))
    per = nll / chars if chars else None
    return {
        "lines": lines, "chars": chars, "oov": oov, "unknown": "".join(unknown_chars), "nll": nll,
        "nll_per_char": per,
        "perplexity": math.exp(min(per, 700.0)) if per is not None else None,
        "bits_per_char": per / math.log(2) if per is not None else None,
    }


# ---------------------------------------------------------------------------------------------
# Reading input


def read_lines(source: Path | str | BinaryIO | None, name: str | None = None) -> Iterator[str]:
    """Lines of a UTF-8 file (path) or binary stream (``name``: what to call it, e.g. "stdin"),
    decoded strictly, one at a time.

    Raises PoetgenError (code 2) at the first undecodable line or NUL byte: binary input is refused
    rather than read as garbage. ``None`` is a closed stream (stdin closed by the shell).
    """
    if source is None:
        raise PoetgenError(f"{name or 'the input'} is closed: pipe text in, or give a file")
    if isinstance(source, (str, Path)):
        path = paths.input_file(source)
        try:
            with path.open("rb") as fh:
                yield from read_lines(fh, str(path))
        except OSError as e:
            raise PoetgenError(f"cannot read {path}: {e.strerror or e}", code=1) from None
        return
    where = f"{name}: " if name else ""
    for number, raw in enumerate(source, 1):
        if b"\x00" in raw:
            raise PoetgenError(f"{where}line {number} holds a NUL byte: this looks like a binary file, not text")
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PoetgenError(f"{where}line {number} is not UTF-8 text (byte {e.start}): is this a binary file?"
                               ) from None
        yield line.removeprefix("\ufeff") if number == 1 else line


# ---------------------------------------------------------------------------------------------
# Scoring


# The longest line scored: a text of its own (a poem is a few hundred characters). One line of
# millions of characters would run for minutes as one sequence with nothing to show for it.
MAX_LINE = 20_000


@dataclass
class _Line:
    number: int
    text: str
    ids: list[int]  # token ids, <unk> for OOV pieces
    scored: list[bool]  # per piece: in the vocabulary (a target)
    chars: int
    oov: int
    unknown: str
    category: int | None  # index into ck.categories; None: mixture (or unconditional model)


def score_lines(
    ck: Checkpoint, lines: Iterable[str], *, batch_size: int = 256, category: str | None = None,
    style: str | None = None,
) -> Iterator[LineScore]:
    """Score each non-blank line of ``lines`` (lazily, in input order); see the module docstring.

    ``category``: a category of a conditional model to use for every line, or ``MIXTURE``; None
    picks per line (poem form from the text, else the mixture). ``style``: a poet of a styled poem
    model to condition every line on (None: any; see ``poetgen.styles``). Raises PoetgenError (code 2) at
    once for a classifier checkpoint or a bad category, and while iterating for binary text or
    input with no non-blank line.
    """
    if ck.config.task != "lm":
        raise PoetgenError(f"{ck.path} is a classifier, not a language model: only language models score text")
    if batch_size < 1:
        raise PoetgenError(f"--batch-size must be at least 1, got {batch_size}")
    if isinstance(lines, str):  # one string: its lines, not its characters
        lines = lines.splitlines()
    # Checkpoint and options are checked now; the input as it is read.
    return _score(ck, lines, batch_size, _fixed_category(ck, category), style_index(ck, style))


def _score(ck: Checkpoint, lines: Iterable[str], batch_size: int, fixed: int | str | None,
           style: int = 0) -> Iterator[LineScore]:
    prepared = (_prepare(ck, number, raw, fixed) for number, raw in enumerate(lines, 1))
    nonblank = (p for p in prepared if p is not None)
    seen_any = False
    chunk_size = batch_size * CHUNK_BATCHES
    for chunk in iter(lambda: list(itertools.islice(nonblank, chunk_size)), []):
        seen_any = True
        yield from _score_chunk(ck, chunk, batch_size, style)
    if not seen_any:
        raise PoetgenError("nothing to score: the input has no non-empty lines")


def _fixed_category(ck: Checkpoint, category: str | None) -> int | str | None:
    """The category index for every line, MIXTURE, or None (decide per line)."""
    if category is None:
        return None
    if not ck.categories:
        raise PoetgenError(f"{ck.path} is not a conditional model: it takes no category")
    if category == MIXTURE:
        return MIXTURE
    if category not in ck.categories:
        raise unknown("category", category, ck.categories)
    return ck.categories.index(category)


def _is_poem_model(ck: Checkpoint) -> bool:
    return serves(ck.meta.get("corpus", {}).get("name")) == "poems"


def _normalize(ck: Checkpoint, text: str) -> str:
    text = unicodedata.normalize("NFC", text).strip()
    if _is_poem_model(ck):  # as corpora.clean_poem cleaned the training text
        text = clean_marks(text)
    return text


def _prepare(ck: Checkpoint, number: int, raw: str | bytes, fixed: int | str | None) -> _Line | None:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise PoetgenError(f"line {number} is not UTF-8 text (byte {e.start}): is this a binary file?") from None
    if "\x00" in raw:
        raise PoetgenError(f"line {number} holds a NUL character: this looks like a binary file, not text")
    if any("\ud800" <= ch <= "\udfff" for ch in raw):  # undecodable bytes smuggled in by surrogateescape
        raise PoetgenError(f"line {number} is not UTF-8 text: is this a binary file?")
    text = _normalize(ck, raw)
    if not text:
        return None
    if len(text) > MAX_LINE:
        raise PoetgenError(f"line {number} has {len(text):,} characters; each line is scored as one text "
                           f"(a poem, a name), of at most {MAX_LINE:,}: split the input into lines")
    tok = ck.tokenizer
    pieces = tok.split(text)
    ids, scored = [], []
    chars = oov = 0
    unknown_chars: dict[str, None] = {}
    for piece in pieces:
        width = len(piece.replace("▁", "")) if isinstance(tok, SentencePieceVocab) else len(piece)
        known = piece in tok.index
        ids.append(tok.index[piece] if known else tok.index["<unk>"])
        scored.append(known)
        if known:
            chars += width
        else:
            oov += width
            unknown_chars.update(dict.fromkeys(piece.replace("▁", "")))
    if fixed == MIXTURE:
        category = None
    elif fixed is not None:
        category = fixed
    else:
        category = _detect_category(ck, text)
    return _Line(number, text, ids, scored, chars, oov, "".join(unknown_chars), category)


def _detect_category(ck: Checkpoint, text: str) -> int | None:
    """The form of a poem (or poem fragment) when the model knows it; None: use the mixture."""
    if not ck.categories or not _is_poem_model(ck):
        return None
    lines = split_lines(text)
    form = detect_form(lines)
    if form not in ck.categories and lines and len({len(line) for line in lines}) == 1:
        width = len(lines[0])
        if width in WIDTH_NAME and len(lines) <= 8:
            form = nearest_form(width, len(lines))
    return ck.categories.index(form) if form in ck.categories else None


def _score_chunk(ck: Checkpoint, chunk: list[_Line], batch_size: int, style: int = 0) -> Iterator[LineScore]:
    # One row per (line, category) the line is scored under: C rows for a mixture line.
    n_categories = len(ck.categories)
    rows: list[tuple[int, int | None]] = []
    for i, line in enumerate(chunk):
        if line.category is None and n_categories:
            rows += [(i, c) for c in range(n_categories)]
        else:
            rows.append((i, line.category))
    order = sorted(range(len(rows)), key=lambda r: len(chunk[rows[r][0]].ids))
    log_probs = [0.0] * len(rows)
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        sums = _row_log_probs(ck.model, [chunk[rows[r][0]] for r in batch], [rows[r][1] for r in batch], style)
        for r, value in zip(batch, sums, strict=True):
            log_probs[r] = value
    per_line: list[list[float]] = [[] for _ in chunk]
    for (i, _), value in zip(rows, log_probs, strict=True):
        per_line[i].append(value)
    for line, values in zip(chunk, per_line, strict=True):
        if len(values) == 1:
            total = values[0]
        else:  # log of the equal-weight mixture: logsumexp(log p(x|c)) - log C
            top = max(values)
            total = top + math.log(sum(math.exp(v - top) for v in values)) - math.log(len(values))
        name = ck.categories[line.category] if line.category is not None else None
        yield LineScore(line.number, line.text, -total if line.chars else 0.0, line.chars, line.oov,
                        line.unknown, name)


@torch.no_grad()
def _row_log_probs(model: nn.Module, lines: list[_Line], categories: list[int | None],
                   style: int = 0) -> list[float]:
    """Summed log-probability of the scored targets of each line (rows may repeat a line)."""
    device = next(model.parameters()).device
    tokens = pad([[BOS, *line.ids[:-1]] for line in lines]).to(device)  # (B, T)
    targets = pad([[t if ok else PAD for t, ok in zip(line.ids, line.scored, strict=True)] for line in lines])
    targets = targets.to(device)  # (B, T); PAD marks "not scored" (padding and OOV)
    category = None
    if model.cfg.num_categories:
        category = torch.tensor([c or 0 for c in categories], dtype=torch.long, device=device)
    styles = torch.full((len(lines),), style, dtype=torch.long, device=device) if style else None
    rows, steps = tokens.shape
    window = max(1, WINDOW_TOKENS // rows)
    totals = torch.zeros(rows, dtype=torch.float64, device=device)
    state = None
    for t0 in range(0, steps, window):
        # Right padding: every real step of a row comes before its padding, so carrying the state
        # across windows gives exactly the numbers of one pass over the whole width.
        h, state = model.features(tokens[:, t0 : t0 + window], category, state, styles)
        totals += model.target_log_probs(h, targets[:, t0 : t0 + window]).double().sum(1)
    return totals.tolist()
