"""Poet styles: which poets a poem model is conditioned on, and how a typed name finds one.

A styled model sees, beside the form, one of ``styles``: index 0 is ``any`` (no poet in
particular), the others the corpus's most prolific named poets. ``any`` is learnt from the poems
of every other poet plus a share of the listed poets' own (``data.style_of`` labels the training
poems), so that it stays the whole corpus's voice rather than the voice of the poets left out.

Below the ``poems`` package because training (``style_table``) and scoring read it as the writer does.
"""

from __future__ import annotations

import difflib
from collections import Counter

from poetgen.checkpoint import Checkpoint
from poetgen.corpora import to_script
from poetgen.errors import bad_value

ANY = "any"
ANONYMOUS = {"无名氏", "不详", "佚名", "無名氏", "不詳"}  # labels of the archive, not poets


def style_table(samples: list, count: int) -> list[list]:
    """``[[name, poems], ...]``: ``any`` (with every poem) and the ``count`` poets with the most
    poems in ``samples`` (ties by name, so the table is the same on every machine)."""
    poets = Counter(s.author for s in samples if s.author and s.author not in ANONYMOUS)
    top = sorted(poets.items(), key=lambda kv: (-kv[1], kv[0]))[:count]
    return [[ANY, len(samples)], *[[name, n] for name, n in top]]


def find_style(name: str, names: list[str], convert=None) -> int:
    """Index of ``name`` among a model's style ``names``; ``convert`` maps it to the model's script.

    An unknown name is an error that suggests the closest listed poets."""
    wanted = name.strip()
    for candidate in (wanted, convert(wanted) if convert else wanted):
        if candidate in names:
            return names.index(candidate)
    close = difflib.get_close_matches(convert(wanted) if convert else wanted, names, n=3, cutoff=0.3)
    hint = f" (did you mean {' or '.join(close)}?)" if close else ""
    raise bad_value("style", f"'{name}' is not one of this model's {len(names) - 1} poets{hint}; "
                             "'list' lists them")


def style_index(ck: Checkpoint, style: str | None) -> int:
    """The index of poet ``style`` (either script) among ``ck``'s styles; None is any (0)."""
    if style is None:
        return 0
    if not ck.styles:
        raise bad_value("style", f"needs a model conditioned on poets; {ck.path.name} has none "
                        "(train one with --styles N)")
    script = (ck.meta.get("corpus") or {}).get("script")
    return find_style(style, ck.style_names, (lambda t: to_script(t, script)) if script else None)
