"""``write_poems``: the public entry point that turns a poem language model into poems of a
guaranteed form (see ``decoder.py`` for how)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, replace

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import SCRIPTS, to_script
from poetgen.defaults import MAX_CANDIDATES, MAX_POEMS, POEM_CANDIDATES, POEM_TEMPERATURE, POEMS_PER_CALL, RHYME_SCHEME
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.poems import tunes
from poetgen.poems.check import check_poem
from poetgen.poems.decoder import Decoder, poem_rules
from poetgen.poems.forms import Form, form_of
from poetgen.poems.masks import vocab_masks
from poetgen.poems.plan import (
    AUTO,
    FREE_FORMS,
    model_script,
    normalise,
    plan_acrostic,
    plan_prefix,
    plan_theme,
    plan_tune,
)
from poetgen.sample import Sampling
from poetgen.styles import style_index
from poetgen.verse import FORMS

MAX_ROWS = 1000  # candidate lines decoded in one batch (memory: rows × vocabulary per step)


@dataclass
class Poem:
    text: str  # lines joined with their marks, in the output script
    lines: list[str]
    form: str  # 五绝 七绝 五律 七律, or 五古 / 七古 for acrostics of another length
    rhyme_group: str | None  # the group the checker found (scheme's names), None if none
    seed: int  # this poem's own seed: base seed + its index in the call
    check: dict  # check.check_poem(text, scheme).to_dict()
    copied_lines: list[int] = field(default_factory=list)  # indexes of lines kept although seen in training
    # With candidates > 1: {"by": "line search", "candidates": K, "nll_per_token": the model's NLL per
    # token of the poem as written, marks included} (None: one candidate per line)
    score: dict | None = None
    style: str | None = None  # the poet it was written as (None: any)

    def to_dict(self) -> dict:
        data = asdict(self)
        for key in ("score", "style"):
            if data[key] is None:
                del data[key]
        return data



def write_poems(
    ck: Checkpoint, prefix: str = "", *, form: str = AUTO, acrostic: bool = False, n: int = POEMS_PER_CALL,
    sampling: Sampling | None = None, rhyme: bool = True, rhyme_scheme: str = RHYME_SCHEME,
    allow_repeats: bool = False, allow_copies: bool = False, mood: str = "", script: str | None = None,
    tones: bool = True, candidates: int = POEM_CANDIDATES, theme: list[str] | None = None, style: str | None = None,
    variant: int | None = None, stock: bool = True,
) -> list[Poem]:
    """Write ``n`` poems in one batch; each keeps the form exactly (see the module docstring).

    ``n`` poems are rows of one batch; poem ``i`` uses seed ``sampling.seed + i`` (a random base seed
    when None), reported as ``Poem.seed``.

    ``prefix`` is continued (empty: a poem from scratch); with ``acrostic=True`` it holds the head
    characters instead, one per line. Input may be in either script and use ASCII marks; it is
    converted to the model's script. ``script`` picks the output script (default: the model's).

    ``candidates`` = K > 1 draws every line K times and keeps the candidate that the model finds
    likeliest after the lines before it, with a bonus for a line those lines make likelier than
    it is on its own (see ``decoder.py``; ``Poem.score``).

    ``theme``: keywords of one or two characters that every poem holds, one per line, spread over
    the poem (see ``plan.plan_theme``); with a prefix, an acrostic and any form.

    ``style``: a poet of a styled model (``ck.styles``; either script) to write as; None: any.

    ``stock=False`` lets the model's over-used phrases through (``stock.py``; for measuring them).

    ``form`` may name a 词 tune (``tunes.py``; the ci model knows them): the poem is then a ci of
    the tune's ``variant`` (1, the most common, when None), its rhyme in the 词林正韵.
    """
    if not 1 <= n <= MAX_POEMS:
        raise bad_value("n", f"(the number of poems) must be between 1 and {MAX_POEMS}, got {n}")
    if not 1 <= candidates <= MAX_CANDIDATES:
        raise bad_value("candidates", f"must be between 1 and {MAX_CANDIDATES}, got {candidates}")
    sampling = (sampling or Sampling()).resolved(POEM_TEMPERATURE)
    if script is not None and script not in SCRIPTS:
        raise unknown("script", script, list(SCRIPTS))
    if ck.config.task != "lm":
        raise PoetgenError(f"{ck.path} is a classifier, not a language model")
    vocab = vocab_masks(ck, rhyme_scheme)
    tune = _tune_form(form, variant, acrostic, rhyme_scheme)
    if tune is not None:
        plan = plan_tune(ck, vocab, prefix, tune)
    else:
        plan = plan_acrostic(ck, vocab, prefix, form) if acrostic else plan_prefix(ck, vocab, prefix, form)
    form_ = tune or form_of(plan.form, plan.width, len(plan.given))
    if theme is not None:
        plan = plan_theme(ck, vocab, plan, theme, form_)
    if style is not None:
        plan = replace(plan, style=style_index(ck, style))
    mood_text = ""
    if mood.strip():
        mood_text = normalise(mood, "the mood", ck, vocab, drop_unknown=True)
        mood_text = "".join(ch for ch in mood_text if ch in vocab.char_id)
        if not mood_text:
            raise PoetgenError("none of the mood's characters are in the model's vocabulary")
    base = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    seeds = [base + i for i in range(n)]
    mood_chars = [vocab.char_id[ch] for ch in mood_text if vocab.cjk[vocab.char_id[ch]]]  # what the bonus lifts
    rules = poem_rules(ck, vocab, plan, form_, rhyme=rhyme, tones=tones, allow_repeats=allow_repeats,
                       allow_copies=allow_copies, mood_ids=mood_chars, stock=stock)
    all_lines: list[list[str]] = []
    copied: list[list[int]] = []
    nll: list[float] = []
    per_batch = max(1, MAX_ROWS // candidates)
    for first in range(0, n, per_batch):  # rows are independent: batching never changes a poem
        decoder = Decoder(ck, vocab, plan, form_, sampling, seeds[first : first + per_batch], rules,
                          search=candidates, mood_ids=[vocab.char_id[ch] for ch in mood_text])
        lines, kept, losses = decoder.run()
        all_lines, copied, nll = all_lines + lines, copied + kept, nll + losses
    poet = ck.style_names[plan.style] if plan.style else None
    source, target = model_script(ck), script or model_script(ck)
    poems = []
    for i, lines in enumerate(all_lines):
        if target is not None and target != source:
            lines = [to_script(line, target) for line in lines]
        text = "".join(line + mark for line, mark in zip(lines, plan.marks, strict=True))
        check = check_poem(text, rhyme_scheme, tune=plan.form if tune else None)
        score = {"by": "line search", "candidates": candidates, "nll_per_token": nll[i]} if candidates > 1 else None
        poems.append(Poem(text, lines, plan.form, check.rhyme_group, seeds[i], check.to_dict(), copied[i],
                          score, poet))
    return poems


def _tune_form(form: str, variant: int | None, acrostic: bool, scheme: str) -> Form | None:
    """The tune's variant when ``form`` names a 词 tune, else None (a shi form; ``variant`` unused)."""
    if not tunes.is_tune(form):
        if form not in (*FORMS, *FREE_FORMS, AUTO):
            hint = tunes.nearest(form)
            raise PoetgenError(f"unknown form '{form}': {', '.join([*FORMS, AUTO])} or a 词 tune"
                               + (f" (nearest tunes: {', '.join(hint)})" if hint else " (write --form list)"))
        if variant is not None:
            raise bad_value("variant", f"applies to a 词 tune, not to {form}")
        return None
    if acrostic:
        raise bad_value("acrostic", f"writes shi: one head per line of a 绝句 or 律诗, not a {form}")
    if scheme != RHYME_SCHEME:
        raise bad_value("rhyme_scheme", f"is the 平水韵 for a 词 (its 词林正韵 is built on it), not {scheme}")
    return tunes.form(form, variant or 1)


def style_list(ck: Checkpoint) -> list[dict]:
    """The poets a model can write as, with their training poems, ``any`` first ([] without styles)."""
    return [{"style": name, "poems": n} for name, n in ck.styles]
