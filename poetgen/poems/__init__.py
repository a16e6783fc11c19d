"""Tang poems: text rules (``text``), tones and rhymes (``prosody``), the constrained writer
(``plan`` → ``masks`` → ``decoder`` → ``write``) and the judge of its output (``evaluate``).

Nothing is imported here, so that ``poetgen.poems.text`` stays torch-free for corpora.py.
"""
