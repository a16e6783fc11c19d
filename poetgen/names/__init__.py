"""Names: language-conditioned surname generation (``generate``), "which language is this surname
from?" (``classify``), and the evaluation of both on the leak-free split (``evaluate``).

Capitalisation: the training data writes names the way ``str.title()`` does (``Dovesky``,
``O'Brien``, ``Bestuzhev-Ryumin``; 99.7% of the distinct names). A name typed all in lower case or
all in upper case (``hou``, ``DOVESKY``) carries no case information, so it is read as its
``title()`` form; a name in mixed case (``McDonald``, ``DeBeers``) is taken as typed. The same rule
applies to ``start`` when generating (``--start mc`` forces ``Mc``).
"""
