"""What the samplers do with an option left out, and how far each option may go: declared once
and torch-free, so that the library (``sample``, ``poems.write``, ``names.generate``), the CLI's
help, the shell's settings and the lab's report all read the same numbers without loading a model.

A front end never states a default of its own: it passes only what its user gave, and says what
the library will do with the rest by reading it here.
"""

from __future__ import annotations

# Every sampler: top-k and top-p filter nothing unless asked (Hugging Face ``generate``'s "off").
TOP_K = 0
TOP_P = 1.0

# Free text (``sample.generate``).
TEXT_TEMPERATURE = 0.8

# Poems. Chosen by blind readings (BENCHMARKS.md, "Blind reading"): at 0.6 a reader scored the
# generated poems' coherence 2.1 of 5, against 1.5 at 0.9 (the repetition rules keep a cool
# temperature from looping).
POEM_TEMPERATURE = 0.6
# Lines drawn per line of the poem, the best kept (1: the first). Blind readings on the same
# openings (BENCHMARKS.md): 16 → coherence 2.33 by both readers, 4 → 2.17 and 2.08; a 七律 takes
# about 1.0 s warm on one CPU thread against 0.6 s.
POEM_CANDIDATES = 16
POEMS_PER_CALL = 1
MAX_POEMS = 1000
MAX_CANDIDATES = 64
RHYME_SCHEME = "pingshui"  # 平水韵, the rhyme system Tang poets wrote in (README, "Rhyme")

# Names. Chosen on the shipped generator (benchmarks/names.py; 200 names per language, seed 0): at
# 0.9 the shipped classifier agrees with the asked language for 0.861 of the names and 0.665 are
# new (not training names); at 0.8, 0.864 and 0.623.
NAME_TEMPERATURE = 0.9
NAME_GUIDANCE = 3.0  # per-character language guidance γ (0 = off), see names.generate._sample_chunk
NAME_RERANK = 4.0  # whole-name language reranking ρ (0 = off), see names.generate.draw_names
NAMES_PER_CALL = 10  # names of one language
NAMES_PER_LANGUAGE = 3  # names of each language, when all are asked for
MAX_NAMES = 1000  # per call (per language when all are asked for)
CLASSIFY_TOP = 3  # languages given per classified name
