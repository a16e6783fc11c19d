"""Shared test fixtures: an isolated cache, the real corpora when present, tiny corpora to train on,
and three tiny models (poems, names generator, names classifier) trained once per test run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("POETGEN_DATA", REPO.parent / "shared" / "corpora"))

TINY_POEMS = [
    ["白日依山盡，黃河入海流。", "欲窮千里目，更上一層樓。"],
    ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"],
    ["千山鳥飛絕，萬徑人蹤滅。", "孤舟蓑笠翁，獨釣寒江雪。"],
    ["春眠不覺曉，處處聞啼鳥。", "夜來風雨聲，花落知多少。"],
    ["朝辭白帝彩雲間，千里江陵一日還。", "兩岸猿聲啼不住，輕舟已過萬重山。"],
    ["月落烏啼霜滿天，江楓漁火對愁眠。", "姑蘇城外寒山寺，夜半鐘聲到客船。"],
    ["獨在異鄉為異客，每逢佳節倍思親。", "遙知兄弟登高處，遍插茱萸少一人。"],
    ["故人西辭黃鶴樓，煙花三月下揚州。", "孤帆遠影碧空盡，唯見長江天際流。"],
]

TINY_NAMES = {
    "Russian": ["Abramov", "Ivanov", "Petrov", "Sidorov", "Smirnov", "Volkov", "Popov", "Sokolov", "Lebedev",
                "Kozlov", "Novikov", "Morozov", "Pavlov", "Semenov", "Golubev", "Vinogradov", "Bogdanov", "Orlov"],
    "Japanese": ["Abe", "Fujita", "Hayashi", "Ito", "Kato", "Kobayashi", "Matsumoto", "Nakamura", "Sato",
                 "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Yamada", "Yamamoto", "Yoshida", "Inoue", "Kimura"],
    "Polish": ["Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński",
               "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Kwiatkowski", "Krawczyk"],
}


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Prepared corpora and REPL history go to a temporary folder, not the user's cache."""
    cache = tmp_path_factory.mktemp("cache")
    os.environ["POETGEN_CACHE"] = str(cache)
    os.environ.pop("POETGEN_DATA", None)
    return cache


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    if not (SHARED / "names").is_dir():
        pytest.skip(f"real corpora not found at {SHARED}")
    return SHARED


def write_tiny_data(root: Path, poems_copies: int = 6) -> Path:
    """A data folder with a few Tang poems (traditional, as the archive has them) and names."""
    quan = root / "chinese-poetry" / "quantangshi"
    quan.mkdir(parents=True)
    items = [{"author": "x", "title": f"t{i}", "paragraphs": p} for i, p in enumerate(TINY_POEMS)]
    # Copies with a varying note keep the texts distinct after cleaning... they are deduplicated,
    # so repeat with one character swapped to get a little more training data.
    extra = []
    for k in range(poems_copies):
        for i, p in enumerate(TINY_POEMS):
            swapped = [line[:1] + "山水風月雲天"[(i + k) % 6] + line[2:] for line in p]
            extra.append({"author": "y", "title": f"v{k}-{i}", "paragraphs": swapped})
    (quan / "poet.tang.0.json").write_text(json.dumps(items + extra, ensure_ascii=False), encoding="utf-8")
    names = root / "names"
    names.mkdir()
    for language, rows in TINY_NAMES.items():
        (names / f"{language}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_data(tmp_path_factory.mktemp("data"))


def train_tiny(data: Path, out: Path, corpus: str, task: str = "lm", *, model: dict | None = None, **train) -> Path:
    """Train a tiny model in seconds (one thread, quiet) into run folder ``out``; returns ``out``.

    Its output is gibberish, but it goes through the same library calls as a real model.
    """
    from poetgen.config import TrainConfig
    from poetgen.model import ModelConfig
    from poetgen.train import Trainer

    settings = {"max_steps": 30, "batch_size": 8, "warmup": 5, "eval_every": 10_000, "threads": 1, "device": "cpu",
                "lr": 1e-2, **train}
    cfg = TrainConfig(corpus=corpus, task=task, data_dir=str(data),
                      model=ModelConfig(task=task, **{"embed": 16, "hidden": 32, "layers": 1, **(model or {})}),
                      **settings)
    Trainer(cfg, out).fit()
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders {"poems", "names", "classify"} of the shared tiny models.

    The poem model reads the tiny poems plus, when the real corpus is at hand, its first 300 poems
    (a vocabulary worth sampling from); its output layer is an adaptive softmax with a 20-character
    head, so that both output layers are exercised (the names models have a full softmax).
    """
    root = tmp_path_factory.mktemp("tiny-models")
    data = write_tiny_data(root / "data")
    real = SHARED / "chinese-poetry" / "quantangshi" / "poet.tang.0.json"
    if real.is_file():
        items = json.loads(real.read_text(encoding="utf-8"))[:300]
        tiny = json.loads((data / "chinese-poetry" / "quantangshi" / "poet.tang.0.json").read_text(encoding="utf-8"))
        (data / "chinese-poetry" / "quantangshi" / "poet.tang.0.json").write_text(
            json.dumps(tiny + items, ensure_ascii=False), encoding="utf-8")
    return {
        "poems": train_tiny(data, root / "poems", "tang", model={"adaptive": True, "cutoffs": [20]}, max_steps=60),
        "names": train_tiny(data, root / "names", "names", max_steps=120),
        "classify": train_tiny(data, root / "classify", "names", "classify"),
    }


@pytest.fixture(scope="session")
def models(tiny_models: dict[str, Path]) -> dict[str, Path]:
    """The tiny models under the name the command-line tests use."""
    return tiny_models


@pytest.fixture(scope="session")
def tiny_ci(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run folder of a tiny 词 model: the first 400 Song ci of the real corpus (conditioned on their
    tunes, as the shipped one is), so that its vocabulary holds every 词林正韵 部 a tune needs."""
    real = SHARED / "chinese-poetry" / "songci" / "ci.song.0.json"
    if not real.is_file():
        pytest.skip(f"real Song ci not found at {SHARED}")
    root = tmp_path_factory.mktemp("tiny-ci")
    folder = root / "data" / "chinese-poetry" / "songci"
    folder.mkdir(parents=True)
    items = json.loads(real.read_text(encoding="utf-8"))[:400]
    (folder / "ci.song.0.json").write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return train_tiny(root / "data", root / "ci", "songci", model={"adaptive": True, "cutoffs": [20]}, max_steps=40)
