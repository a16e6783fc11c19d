"""``write_poems``: the public entry point that turns a poem language model into poems of a
guaranteed form (see ``decoder.py`` for how)."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import SCRIPTS, to_script
from poetgen.errors import PoetgenError, bad_value, unknown
from poetgen.poems import prosody
from poetgen.poems.decoder import Decoder
from poetgen.poems.masks import vocab_masks
from poetgen.poems.plan import AUTO, model_script, normalise, plan_acrostic, plan_prefix
from poetgen.sample import DEFAULT_TEMPERATURE, Sampling

MAX_POEMS = 1000


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
        raise bad_value("n", f"(the number of poems) must be between 1 and {MAX_POEMS}, got {n}")
    sampling = (sampling or Sampling()).resolved(DEFAULT_TEMPERATURE)
    if script is not None and script not in SCRIPTS:
        raise unknown("script", script, list(SCRIPTS))
    if ck.config.task != "lm":
        raise PoetgenError(f"{ck.path} is a classifier, not a language model")
    vocab = vocab_masks(ck, rhyme_scheme)
    plan = plan_acrostic(ck, vocab, prefix, form) if acrostic else plan_prefix(ck, vocab, prefix, form)
    mood_text = ""
    if mood.strip():
        mood_text = normalise(mood, "the mood", ck, vocab, drop_unknown=True)
        mood_text = "".join(ch for ch in mood_text if ch in vocab.char_id)
        if not mood_text:
            raise PoetgenError("none of the mood's characters are in the model's vocabulary")
    base = sampling.seed if sampling.seed is not None else secrets.randbelow(2**31)
    seeds = [base + i for i in range(n)]
    decoder = Decoder(ck, vocab, plan, sampling, seeds, rhyme=rhyme, tones=rhyme and tones,
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
