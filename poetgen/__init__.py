"""poetgen: recurrent language models that write Tang poems and names."""

__version__ = "0.1.0"
