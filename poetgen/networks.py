"""The network a ``ModelConfig`` names: poetgen's own (``model.py``) or the tutorials' RNNs
(``tutorial.py``). The factory lives above both because the tutorials' generator is a
``LanguageModel`` (it scores and samples through its methods): ``model.py`` cannot import
``tutorial.py`` without a circle.
"""

from __future__ import annotations

from torch import nn

from poetgen.model import Classifier, LanguageModel, ModelConfig
from poetgen.tutorial import TutorialClassifier, TutorialGenerator


def build_model(cfg: ModelConfig) -> nn.Module:
    """A fresh network for ``cfg`` (validated first), its weights at their initial values."""
    cfg.validate()
    if cfg.model == "tutorial-rnn":
        return TutorialGenerator(cfg) if cfg.task == "lm" else TutorialClassifier(cfg)
    return LanguageModel(cfg) if cfg.task == "lm" else Classifier(cfg)
