"""Writing poems: constrained decoding that guarantees the form.

``write_poems`` turns a trained poem language model into 五绝 / 七绝 / 五律 / 七律 (or acrostic
古体) poems. The model proposes, masks dispose: before every draw the logits of all tokens that
would break the form are set to -inf, so every poem has exactly the right number of lines and
characters per line, ，/。 alternating at the line ends and nowhere else, no special or non-Chinese
token, no character twice in a line, and (by default) even lines rhyming in one level-tone (平)
group. Nothing is rejection-sampled except whole lines copied from the training data (a bounded
number of retries). ``poem_eval.py`` measures the result.

Design, in short (details at each function):

* Rhyme: the group is chosen where the first even line ends: that position may take any
  character read 平 in a group with enough members in the vocabulary, and the model's choice
  fixes the candidate groups (all level groups of that character; a polyphonic one keeps
  several). Later rhyme positions may take only level-tone members of a still-possible group, and
  never a rhyme character used before (重韵). Line 1 is free: it rhymes when the model wants.
  A prefix that already holds a rhyme position fixes the group (or an oblique group, if that is
  what the user wrote). Odd lines after the first (3, 5, 7) end in a character that has a 仄
  reading, as regulated verse wants.
* Tone pattern (绝句 and 律诗, not 古体): at the 2nd, 4th and 6th character of every line, characters
  whose tone is surely the wrong one are masked, so 二四六分明, 对 and 粘 hold; the model's first
  sure-toned key character (or the prefix's) sets the pattern. Characters with both readings, or
  unknown to the table, stay allowed (the checker never fails them either). ``tones=False`` lifts
  this rule; ``rhyme=False`` lifts it and the two rhyme rules above.
* Soft fallback: every rule after "a Chinese character" is a mask layer; in the (rare) row where
  all layers together leave nothing, the last layers are dropped one by one for that row only, so
  a draw is never impossible and never unbounded.
* Mood: the mood text is fed first, as if it were an earlier poem (``<bos> mood <eos>``) before the
  poem's own ``<bos>``, and its characters get a small logit bonus (MOOD_BONUS nats) in the poem.
  It is never printed; its characters the model lacks are skipped.
* Novelty: a drawn line identical to a training line (``ck.has_seen``) is re-drawn from the line's
  start, at most NOVELTY_RETRIES times, with the copy's last character banned (so greedy decoding
  escapes too); a line still copied after that is kept and listed in ``Poem.copied_lines``.
* Input: ASCII marks become full width, spaces are ignored, either script is converted to the
  model's (OpenCC); ？ and ！ typed at a line end are kept, other marks become ，/。 by position.
* Seeds: poem ``i`` of a call draws its random numbers from its own generator seeded with
  ``seed + i`` (``seed`` drawn at random and reported when not given), and a row's random numbers do
  not depend on the other rows. So the same seed and options give the same poems, and poem ``i``
  alone is reproduced by ``seed + i`` with ``n=1`` (barring floating-point ties between batch sizes).
"""

from __future__ import annotations

import math
import secrets
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from poetgen import prosody
from poetgen.checkpoint import Checkpoint
from poetgen.corpora import SCRIPTS, to_script
from poetgen.errors import PoetgenError, unknown
from poetgen.sample import Sampling, Stepper, filter_logits
from poetgen.vocab import BOS, EOS

FORMS = prosody.FORMS  # {"五绝": (4, 5), "七绝": (4, 7), "五律": (8, 5), "七律": (8, 7)}
AUTO = "auto"
MAX_POEMS = 1000
MAX_HEADS = 64  # acrostic lines
NOVELTY_RETRIES = 3  # re-draws of a line identical to a training line before it is kept (and marked)
MOOD_BONUS = 1.0  # nats added to the mood's characters at every character slot

COMMA, STOP = "，", "。"
MARKS = "，。？！；、："  # accepted in prefixes (after mapping ASCII marks to full width)
ASCII_MARKS = str.maketrans({",": "，", ".": "。", "?": "？", "!": "！", ";": "；", ":": "："})
ODD_KEEP, EVEN_KEEP = "，？！", "。？！"  # marks kept as typed at the end of lines 1, 3.. / 2, 4..
WIDTH_NAME = {5: "五", 7: "七"}


def is_cjk(ch: str) -> bool:
    """A CJK ideograph (basic block, extension A, compatibility, extensions B and later, 〇)."""
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0xF900 <= o <= 0xFAFF
            or 0x20000 <= o <= 0x3FFFF or o == 0x3007)


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Poem:
    text: str  # lines joined with their marks, in the output script
    lines: list[str]
    form: str  # 五绝 七绝 五律 七律, or 五古 / 七古 for acrostics of another length
    rhyme_group: str | None  # the group the checker found (scheme's names), None if none
    seed: int  # this poem's own seed: base seed + its index in the call
    check: dict  # prosody.check_poem(text, scheme).to_dict()
    copied_lines: list[int] = field(default_factory=list)  # indexes of lines kept although seen in training

    def to_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------
# What the vocabulary offers: boolean masks over token ids, built once per (tokenizer, scheme)


class VocabMasks:
    """Masks over the vocabulary (V,) and rhyme membership (G, V), for vectorised constraints.

    Only single-character tokens are written inside lines (with the default character tokenizer
    that is every token); ``char_id`` maps such a character to its id.
    """

    def __init__(self, ck: Checkpoint, scheme: str) -> None:
        rhymes = prosody.table(scheme)
        tokens = ck.tokenizer.tokens
        V = len(tokens)
        self.scheme = scheme
        self.tokens = tokens
        self.char_id = {t: i for i, t in enumerate(tokens) if i >= 4 and len(t) == 1}
        self.groups = rhymes.group_names()
        gindex = {g: i for i, g in enumerate(self.groups)}
        self.cjk = torch.zeros(V, dtype=torch.bool)
        self.oblique = torch.zeros(V, dtype=torch.bool)  # has a 仄 reading
        self.tone = torch.full((V,), -1, dtype=torch.long)  # 0: surely 平, 1: surely 仄, -1: both or unknown
        level = torch.zeros(len(self.groups), V, dtype=torch.bool)  # read 平 in group g
        member = torch.zeros(len(self.groups), V, dtype=torch.bool)  # in group g, any tone
        for ch, i in self.char_id.items():
            if not is_cjk(ch):
                continue
            self.cjk[i] = True
            tones = rhymes.tones(ch)
            self.oblique[i] = prosody.OBLIQUE in tones
            if len(tones) == 1:
                self.tone[i] = 0 if prosody.LEVEL in tones else 1
            for g in rhymes.level_groups(ch):
                level[gindex[g], i] = True
            for g in rhymes.groups(ch):
                member[gindex[g], i] = True
        self.level, self.member = level, member
        # Added at a 平仄 key slot: row 0 when 平 is wanted (sure-仄 characters out), 1 for 仄, 2 free.
        self.tone_bias = torch.zeros(3, V)
        self.tone_bias[0].masked_fill_(self.tone == 1, -math.inf)
        self.tone_bias[1].masked_fill_(self.tone == 0, -math.inf)
        self.level_f, self.member_f = level.float(), member.float()
        if int(self.cjk.sum()) < 8 or COMMA not in self.char_id or STOP not in self.char_id:
            raise PoetgenError(f"{ck.path} cannot write poems: its vocabulary lacks Chinese characters or ，。 "
                               "(is it a names model?)")

    def on(self, device: torch.device) -> VocabMasks:
        """These masks with their tensors on ``device`` (cached; the CPU masks are ``self``)."""
        if device.type == "cpu":
            return self
        cache = self.__dict__.setdefault("_devices", {})
        if device not in cache:
            other = object.__new__(VocabMasks)
            other.__dict__.update({k: v.to(device) if isinstance(v, Tensor) else v
                                   for k, v in self.__dict__.items() if k != "_devices"})
            cache[device] = other
        return cache[device]

    def mark_id(self, mark: str) -> int:
        return self.char_id.get(mark, self.char_id[COMMA if mark in ODD_KEEP else STOP])


_VOCABS: dict[tuple[int, str], tuple[object, VocabMasks]] = {}


def vocab_masks(ck: Checkpoint, scheme: str = "pingshui") -> VocabMasks:
    """Cached masks for this checkpoint's tokenizer (keyed by the tokenizer object's identity)."""
    key = (id(ck.tokenizer), scheme)
    hit = _VOCABS.get(key)
    if hit is not None and hit[0] is ck.tokenizer:
        return hit[1]
    if len(_VOCABS) >= 8:
        _VOCABS.clear()
    masks = VocabMasks(ck, scheme)
    _VOCABS[key] = (ck.tokenizer, masks)
    return masks


# ---------------------------------------------------------------------------------------------
# Reading the user's text


def model_script(ck: Checkpoint) -> str | None:
    script = (ck.meta.get("corpus") or {}).get("script")
    return script if script in SCRIPTS else None


def _normalise(text: str, what: str, ck: Checkpoint, vocab: VocabMasks, *, drop_unknown: bool = False) -> str:
    """Full-width marks, no spaces, the model's script; a PoetgenError for anything unwritable."""
    text = text.translate(ASCII_MARKS)
    text = "".join(ch for ch in text if ch == "\n" or not ch.isspace())
    bad = list(dict.fromkeys(ch for ch in text if not (ch == "\n" or ch in MARKS or is_cjk(ch))))
    if bad:
        shown = ", ".join(repr(ch) for ch in bad[:5])
        raise PoetgenError(f"{what} may hold only Chinese characters and ，。？！； punctuation, not {shown}")
    script = model_script(ck)
    if script is not None:
        text = to_script(text, script)
    missing = [ch for ch in dict.fromkeys(text) if ch != "\n" and ch not in MARKS and ch not in vocab.char_id]
    if missing and drop_unknown:
        return "".join(ch for ch in text if ch not in missing)
    if missing:
        hints = []
        for ch in missing:
            variants = {to_script(ch, s) for s in SCRIPTS} - {ch}
            hints += [f"'{v}' for '{ch}'" for v in sorted(variants) if v in vocab.char_id]
        shown = ", ".join(f"'{ch}'" for ch in missing[:8])
        hint = f" (try {', '.join(hints)})" if hints else ""
        raise PoetgenError(f"the model never saw {shown} in {what}{hint}")
    return text


@dataclass
class _Plan:
    form: str
    width: int
    given: list[str]  # characters fixed in each line (prefix text or the acrostic head)
    marks: list[str]  # the mark ending each line
    category: int | None


def _line_mark(index: int, typed: str | None, last: bool) -> str:
    """The mark ending line ``index`` (0-based): what the user typed if it fits, else ，/。."""
    if last:
        return typed if typed and typed in "？！" else STOP
    keep = ODD_KEEP if index % 2 == 0 else EVEN_KEEP
    if typed and typed in keep:
        return typed
    return COMMA if index % 2 == 0 else STOP


def _category(ck: Checkpoint, form: str, lines: int, width: int) -> int | None:
    """Index of the conditioning category: the form itself, else the closest one the model knows."""
    if not ck.config.num_categories or not ck.categories:
        return None
    cats = ck.categories
    wanted = [form, "other", f"{WIDTH_NAME[width]}{'律' if lines > 4 else '绝'}"]
    for c in wanted:
        if c in cats:
            return cats.index(c)
    return 0


def check_form(form: str) -> None:
    if form != AUTO and form not in FORMS:
        raise unknown("form", form, [*FORMS, AUTO])


def plan_prefix(ck: Checkpoint, vocab: VocabMasks, prefix: str, form: str) -> _Plan:
    """Split a prefix into lines and pick the form; errors for prefixes that cannot fit it.

    ``auto`` takes the line length from the prefix's first finished line (5 or 7), else 7, and
    writes a 绝句 unless the prefix already has more than four lines. An unfinished last run of
    characters longer than a line is wrapped; a finished line must have exactly the line length.
    """
    check_form(form)
    text = _normalise(prefix, "the prefix", ck, vocab)
    done: list[tuple[str, str]] = []  # (line, typed mark)
    current = ""
    for ch in text:
        if ch in MARKS or ch == "\n":
            if not current:
                if ch == "\n":  # blank lines, or a line break after a mark
                    continue
                raise PoetgenError(f"the prefix has a '{ch}' with no characters before it")
            done.append((current, ch))
            current = ""
        else:
            current += ch
    if form == AUTO:
        width = len(done[0][0]) if done else 7
        if width not in WIDTH_NAME:
            raise PoetgenError(f"the prefix's first line has {width} characters; poems have lines of 5 or 7")
    else:
        width = FORMS[form][1]
    while len(current) > width:  # wrap a long unfinished run
        done.append((current[:width], ""))
        current = current[width:]
    if form == AUTO:
        count = len(done) + (1 if current else 0)
        form = f"{WIDTH_NAME[width]}{'律' if count > 4 else '绝'}"
    n_lines = FORMS[form][0]
    for i, (line, _) in enumerate(done):
        if len(line) != width:
            raise PoetgenError(f"line {i + 1} of the prefix has {len(line)} characters, but a {form} line has {width}")
    count = len(done) + (1 if current else 0)
    if count > n_lines:
        raise PoetgenError(f"the prefix is longer than a {form} ({n_lines} lines of {width} characters)")
    given = [line for line, _ in done] + ([current] if current else [])
    given += [""] * (n_lines - len(given))
    typed = [mark for _, mark in done] + [None] * (n_lines - len(done))
    marks = [_line_mark(i, typed[i], i == n_lines - 1) for i in range(n_lines)]
    return _Plan(form, width, given, marks, _category(ck, form, n_lines, width))


def plan_acrostic(ck: Checkpoint, vocab: VocabMasks, heads: str, form: str) -> _Plan:
    """One line per head character; 4 heads make a 绝句, 8 a 律诗, other counts a 古体 (五古/七古).

    The line length comes from ``form`` (五.. → 5, 七.. → 7, auto → 7).
    """
    check_form(form)
    stripped = "".join(ch for ch in heads if not ch.isspace())
    if not stripped:
        raise PoetgenError("give the head characters of the acrostic (藏头诗), e.g. 春夏秋冬")
    marks = [ch for ch in dict.fromkeys(stripped.translate(ASCII_MARKS)) if ch in MARKS]
    if marks:
        shown = ", ".join(f"'{ch}'" for ch in marks)
        raise PoetgenError(f"acrostic heads must be Chinese characters: {shown} cannot start a line")
    text = _normalise(stripped, "the acrostic heads", ck, vocab)
    if len(text) > MAX_HEADS:
        raise PoetgenError(f"an acrostic has at most {MAX_HEADS} head characters, got {len(text)}")
    width = FORMS[form][1] if form in FORMS else 7
    n = len(text)
    name = WIDTH_NAME[width] + {4: "绝", 8: "律"}.get(n, "古")
    marks_out = [_line_mark(i, None, i == n - 1) for i in range(n)]
    return _Plan(name, width, list(text), marks_out, _category(ck, name, n, width))


# ---------------------------------------------------------------------------------------------
# The constrained decoder


@dataclass
class _Rows:
    """Per-row state: candidate rhyme groups (b, G), rhyme characters used so far (b, V), and the
    tone pattern's base (b,): the tone (0 平, 1 仄) of line 1's 2nd character, -1 while unknown."""

    cand: Tensor
    rhymed: Tensor
    base: Tensor

    def take(self, idx: Tensor) -> _Rows:
        return _Rows(self.cand[idx], self.rhymed[idx], self.base[idx])

    def put(self, idx: Tensor, other: _Rows) -> None:
        self.cand[idx] = other.cand
        self.rhymed[idx] = other.rhymed
        self.base[idx] = other.base

    def clone(self) -> _Rows:
        return _Rows(self.cand.clone(), self.rhymed.clone(), self.base.clone())


def _take_state(state, idx: Tensor):
    if isinstance(state, tuple):
        return tuple(s.index_select(1, idx) for s in state)
    return state.index_select(1, idx)


def _put_state(state, idx: Tensor, sub):
    if isinstance(state, tuple):
        return tuple(s.index_copy(1, idx, t) for s, t in zip(state, sub, strict=True))
    return state.index_copy(1, idx, sub)


def _key(line: int, pos: int) -> int | None:
    """At a 平仄 key slot (the 2nd, 4th, 6th character of a line; ``pos`` 0-based), the tone relative
    to the poem's base: keys alternate within a line (二四六分明), a couplet's lines are opposite
    (对) and a couplet's first line repeats the line before it (粘); None elsewhere."""
    if pos % 2 == 0 or pos > 5:
        return None
    return (pos // 2) % 2 ^ ((line + 1) // 2) % 2


class _Decoder:
    """Writes ``B`` poems of one plan in lockstep, one token slot at a time."""

    def __init__(self, ck: Checkpoint, vocab: VocabMasks, plan: _Plan, sampling: Sampling, seeds: list[int], *,
                 rhyme: bool, tones: bool, allow_repeats: bool, allow_copies: bool, mood: str) -> None:
        self.device = next(ck.model.parameters()).device
        vocab = vocab.on(self.device)
        self.ck, self.v, self.plan, self.sampling = ck, vocab, plan, sampling
        self.B, self.L, self.W = len(seeds), len(plan.given), plan.width
        self.allow_repeats, self.allow_copies = allow_repeats, allow_copies
        V = len(vocab.tokens)
        # Random numbers: row i draws them from its own generator, so rows are independent.
        per_row = self.L * (NOVELTY_RETRIES + 1) * self.W
        self.u = torch.stack([torch.rand(per_row, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
                              for s in seeds]).view(self.B, self.L, NOVELTY_RETRIES + 1, self.W).to(self.device)
        self.mood_ids = [vocab.char_id[ch] for ch in mood if ch in vocab.char_id]
        # Added to the log-probs at every character slot: -inf off Chinese characters, the mood's bonus.
        self.bias = torch.zeros(V, device=self.device).masked_fill(~vocab.cjk, -math.inf)
        chars = [vocab.char_id[ch] for ch in mood if ch in vocab.char_id and vocab.cjk[vocab.char_id[ch]]]
        self.bias[chars] += MOOD_BONUS
        self.rhyme_lines = {i for i in range(1, self.L, 2)} if rhyme else set()
        self.oblique_lines = {i for i in range(2, self.L - 1, 2)} if rhyme else set()
        self.tones = tones and self.L in (4, 8)  # the 平仄 pattern binds regulated verse, not 古体
        self._init_rhyme(V)
        self._init_tones()

    def _init_rhyme(self, V: int) -> None:
        """Candidate groups before any drawing, from the rhyme characters the plan already fixes."""
        v, W = self.v, self.W
        fixed = [v.char_id[self.plan.given[i][-1]] for i in sorted(self.rhyme_lines)
                 if len(self.plan.given[i]) == W]
        open_positions = sum(len(self.plan.given[i]) < W for i in self.rhyme_lines)
        self.matrix, self.matrix_f = v.level, v.level_f
        cand = torch.ones(len(v.groups), dtype=torch.bool, device=self.device)
        known = [t for t in fixed if v.member[:, t].any()]
        if known:
            level = torch.stack([v.level[:, t] for t in known]).all(0)
            if level.any():
                cand = level
            else:  # the user's rhyme is oblique (仄): follow it rather than break it
                self.matrix, self.matrix_f = v.member, v.member_f
                member = torch.stack([v.member[:, t] for t in known]).all(0)
                cand = member if member.any() else v.member[:, known[-1]]
        # Groups with too few members in the vocabulary could run dry: prefer the others.
        viable = cand & ((self.matrix & v.cjk).sum(1) >= open_positions + W)
        cand = viable if viable.any() else cand
        self.rows = _Rows(cand.expand(self.B, -1).clone(), torch.zeros(self.B, V, dtype=torch.bool, device=self.device),
                          torch.full((self.B,), -1, dtype=torch.long, device=self.device))
        for t in fixed + [v.char_id[g[-1]] for g in self.plan.given[:1] if len(g) == W]:
            self.rows.rhymed[:, t] = True

    def _init_tones(self) -> None:
        """The tone pattern's base from the first key character of the prefix whose tone is sure."""
        for line, text in enumerate(self.plan.given):
            for pos, ch in enumerate(text):
                key = _key(line, pos)
                tone = int(self.v.tone[self.v.char_id[ch]])
                if key is not None and tone >= 0:
                    self.rows.base.fill_(tone ^ key)
                    return

    # -- one slot ----------------------------------------------------------------------------

    def _line_end_mask(self, rows: _Rows, used: Tensor, line: int, ban: Tensor | None) -> Tensor:
        """(b, V) mask of the tokens allowed at the last slot of a line, after the soft fallback.

        Mid-line slots need no such mask: "a Chinese character not yet in this line" can never
        be empty (the vocabulary has more such characters than a line is long).
        """
        layers = []  # soft rules, most important first
        rhyming = line in self.rhyme_lines
        if rhyming:
            layers.append((rows.cand.float() @ self.matrix_f) > 0)
        if not self.allow_repeats:
            layers.append(~used)
        if ban is not None:
            layers.append(torch.ones_like(used).scatter_(1, ban[:, None], False))
        if rhyming and not self.allow_repeats:
            layers.append(~rows.rhymed)
        if line in self.oblique_lines:
            layers.append(self.v.oblique.expand_as(used))
        mask = self.v.cjk.expand_as(used)
        steps = [mask]
        for layer in layers:
            mask = mask & layer
            steps.append(mask)
        ok = mask.any(-1)
        if not bool(ok.all()):
            mask = mask.clone()
            for fallback in reversed(steps[:-1]):
                empty = ~ok
                mask[empty] = fallback[empty]
                ok = mask.any(-1)
                if bool(ok.all()):
                    break
        return mask

    def _draw(self, logits: Tensor, u: Tensor) -> Tensor:
        """One token per row from masked logits (-inf = forbidden), by inverse CDF on the row's uniform.

        Without top-k/top-p this is a few passes over (b, V): max, exp, cumsum, a binary search.
        """
        s = self.sampling
        if s.temperature == 0:
            return logits.argmax(-1)
        # Shift first so that the best token sits at 0: a tiny temperature then cannot overflow to inf.
        z = logits - logits.max(-1, keepdim=True).values
        if s.top_k or s.top_p < 1.0:
            z = filter_logits(z, s.temperature, s.top_k, s.top_p)
        else:
            z = z.div_(s.temperature)
        cdf = z.exp().cumsum_(-1)
        x = (u.to(cdf.dtype).clamp(min=1e-7) * cdf[:, -1]).unsqueeze(-1)
        tok = torch.searchsorted(cdf, x).squeeze(-1).clamp_(max=cdf.shape[-1] - 1)
        bad = ~torch.isfinite(z.gather(1, tok[:, None]).squeeze(-1))  # float edge cases: stay allowed
        bad |= ~torch.isfinite(logits.gather(1, tok[:, None]).squeeze(-1))
        if bool(bad.any()):
            tok = torch.where(bad, logits.argmax(-1), tok)
        return tok

    # -- one line ----------------------------------------------------------------------------

    def _line(self, stepper: Stepper, logp: Tensor, rows: _Rows, index: Tensor, line: int, attempt: int,
              ban: Tensor | None) -> tuple[Tensor, _Rows]:
        """Draw the free slots of ``line`` for the rows ``index``; the last token is left unfed."""
        given = [self.v.char_id[ch] for ch in self.plan.given[line]]
        rows = rows.clone()
        b = len(index)
        # ids already in the line (b, k)
        used = torch.tensor([given] * b, dtype=torch.long, device=self.device).view(b, len(given))
        out: list[Tensor] = []
        last = self.W - 1
        for pos in range(len(given), self.W):
            if out:
                logp = stepper.feed(out[-1])
            logits = logp.float() + self.bias
            key = _key(line, pos) if self.tones and pos < last else None
            if pos < last:
                if not self.allow_repeats and used.shape[1]:
                    logits.scatter_(1, used, -math.inf)
                if key is not None:  # 二四六分明, 对, 粘: characters of the wrong (sure) tone are out
                    want = torch.where(rows.base < 0, 2, rows.base ^ key)
                    keyed = logits + self.v.tone_bias[want]
                    alive = torch.isfinite(keyed.max(-1).values)  # (never empty in a real vocabulary)
                    logits = keyed if bool(alive.all()) else torch.where(alive[:, None], keyed, logits)
            else:
                seen = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, used, True)
                logits.masked_fill_(~self._line_end_mask(rows, seen, line, ban), -math.inf)
            tok = self._draw(logits, self.u[index, line, attempt, pos])
            out.append(tok)
            used = torch.cat([used, tok[:, None]], dim=1)
            if key is not None:
                tone = self.v.tone[tok]
                rows.base = torch.where((rows.base < 0) & (tone >= 0), tone ^ key, rows.base)
        if line in self.rhyme_lines:
            narrowed = rows.cand & self.matrix[:, tok].T
            rows.cand = torch.where(narrowed.any(-1, keepdim=True), narrowed, rows.cand)
        if line in self.rhyme_lines or line == 0:
            rows.rhymed.scatter_(1, tok[:, None], True)
        return torch.stack(out, dim=1), rows

    def _line_text(self, given: str, ids: Tensor) -> list[str]:
        tokens = self.v.tokens
        return [given + "".join(tokens[t] for t in row) for row in ids.tolist()]

    # -- the poem ----------------------------------------------------------------------------

    @torch.no_grad()
    def run(self) -> tuple[list[list[str]], list[list[int]]]:
        """Lines of every poem (model script) and, per poem, the lines kept although copied."""
        B, plan, v = self.B, self.plan, self.v
        cats = None
        if plan.category is not None:
            cats = torch.full((B,), plan.category, dtype=torch.long, device=self.device)
        stepper = Stepper(self.ck, B, cats)
        start = [BOS, *self.mood_ids, EOS, BOS] if self.mood_ids else [BOS]
        pending = start + [v.char_id[ch] for ch in plan.given[0]]
        pending_t = torch.tensor([pending] * B, device=self.device)
        lines: list[list[str]] = [[] for _ in range(B)]
        copied: list[list[int]] = [[] for _ in range(B)]
        for line in range(self.L):
            given = plan.given[line]
            if len(given) < self.W:
                logp = stepper.feed(pending_t)
                texts = self._free_line(stepper, logp, cats, line, copied)
                pending_t = self._last
            else:  # a line the prefix already holds: its tokens wait in ``pending_t``
                texts = [given] * B
            for i, t in enumerate(texts):
                lines[i].append(t)
            if line + 1 < self.L:
                nxt = [v.mark_id(plan.marks[line]), *(v.char_id[ch] for ch in plan.given[line + 1])]
                pending_t = torch.cat([pending_t, torch.tensor([nxt] * B, dtype=torch.long, device=self.device)], dim=1)
        return lines, copied

    def _free_line(self, stepper: Stepper, logp: Tensor, cats: Tensor | None, line: int,
                   copied: list[list[int]]) -> list[str]:
        """Draw ``line`` for all rows, re-drawing (from the line's start) rows that copied a training
        line, at most NOVELTY_RETRIES times; at a retry the last character of the copy is banned."""
        given = self.plan.given[line]
        snap_state, snap_rows = stepper.state, self.rows
        ids, rows = self._line(stepper, logp, snap_rows, torch.arange(self.B, device=self.device), line, 0, None)
        texts = self._line_text(given, ids)
        bad = [] if self.allow_copies else [i for i, t in enumerate(texts) if self.ck.has_seen(t)]
        for attempt in range(1, NOVELTY_RETRIES + 1):
            if not bad:
                break
            idx = torch.tensor(bad, device=self.device)
            sub = Stepper(self.ck, len(bad), cats[idx] if cats is not None else None)
            sub.state = _take_state(snap_state, idx)
            sub_ids, sub_rows = self._line(sub, logp[idx], snap_rows.take(idx), idx, line, attempt, ids[idx, -1])
            ids[idx] = sub_ids
            rows.put(idx, sub_rows)
            stepper.state = _put_state(stepper.state, idx, sub.state)
            for i, t in zip(bad, self._line_text(given, sub_ids), strict=True):
                texts[i] = t
            bad = [i for i in bad if self.ck.has_seen(texts[i])]
        for i in bad:
            copied[i].append(line)
        self.rows = rows
        self._last = ids[:, -1:]
        return texts


# ---------------------------------------------------------------------------------------------
# The public entry point


def write_poems(
    ck: Checkpoint, prefix: str = "", *, form: str = AUTO, acrostic: bool = False, n: int = 1,
    sampling: Sampling | None = None, rhyme: bool = True, rhyme_scheme: str = "pingshui",
    allow_repeats: bool = False, allow_copies: bool = False, mood: str = "", script: str | None = None,
    tones: bool = True,
) -> list[Poem]:
    """Write ``n`` poems in one batch; each keeps the form exactly (see the module docstring).

    ``n`` poems are rows of one batch; poem ``i`` uses seed ``sampling.seed + i`` (a random base seed
    when None), reported as ``Poem.seed``.

    ``prefix`` is continued (empty: a poem from scratch); with ``acrostic=True`` it holds the head
    characters instead, one per line. Input may be in either script and use ASCII marks; it is
    converted to the model's script. ``script`` picks the output script (default: the model's).
    """
    if not 1 <= n <= MAX_POEMS:
        raise PoetgenError(f"the number of poems must be between 1 and {MAX_POEMS}, got {n}")
    sampling = (sampling or Sampling()).validate()
    if script is not None and script not in SCRIPTS:
        raise unknown("script", script, list(SCRIPTS))
    if ck.config.task != "lm":
        raise PoetgenError(f"{ck.path} is a classifier, not a language model")
    vocab = vocab_masks(ck, rhyme_scheme)
    plan = plan_acrostic(ck, vocab, prefix, form) if acrostic else plan_prefix(ck, vocab, prefix, form)
    mood_text = ""
    if mood.strip():
        mood_text = _normalise(mood, "the mood", ck, vocab, drop_unknown=True)
        mood_text = "".join(ch for ch in mood_text if ch in vocab.char_id)
        if not mood_text:
            raise PoetgenError("none of the mood's characters are in the model's vocabulary")
    base = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    seeds = [base + i for i in range(n)]
    decoder = _Decoder(ck, vocab, plan, sampling, seeds, rhyme=rhyme, tones=rhyme and tones,
                       allow_repeats=allow_repeats, allow_copies=allow_copies, mood=mood_text)
    all_lines, copied = decoder.run()
    source, target = model_script(ck), script or model_script(ck)
    poems = []
    for i, lines in enumerate(all_lines):
        if target is not None and target != source:
            lines = [to_script(line, target) for line in lines]
        text = "".join(line + mark for line, mark in zip(lines, plan.marks, strict=True))
        check = prosody.check_poem(text, rhyme_scheme)
        poems.append(Poem(text, lines, plan.form, check.rhyme_group, seeds[i], check.to_dict(), copied[i]))
    return poems
