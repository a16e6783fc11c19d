"""Tang poems: the forms table (``forms``), tones and rhymes (``prosody``), the constrained writer
(``plan`` → ``masks`` → ``decoder`` → ``write``) and the judge of its output (``evaluate``). The
text rules and poet styles they share with the corpus and scoring lie below, in ``poetgen.verse``
and ``poetgen.styles``.

Nothing is imported here, so that importing one module (``forms``, ``prosody``) loads only what it needs.
"""
