"""The lab deliverables: curves (poetgen.plots), the RNN/LSTM/GRU comparison (poetgen.compare) and
the report (poetgen.report), driven by tiny models on a tiny three-language names corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from poetgen.config import preset
from poetgen.errors import PoetgenError
from poetgen.lab.compare import TURNS, compare_models, parse_spec
from poetgen.lab.plots import plot_compare, plot_confusion, plot_run, read_metrics
from poetgen.lab.report import write_report
from poetgen.train import Trainer

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
STEPS = 40
SPECS = ["rnn", "lstm", "gru", "lstm:custom"]

NAMES = {  # three languages a character model tells apart within a few dozen steps
    "Russian": "Abramov Ivanov Petrov Sidorov Smirnov Volkov Popov Sokolov Lebedev Kozlov Novikov Morozov Pavlov "
               "Semenov Golubev Vinogradov Bogdanov Orlov Vasiliev Zaitsev Solovyov Borisov Yakovlev Grigoriev "
               "Romanov Vorobyov Sergeev Kuzmin Frolov Alexandrov",
    "Japanese": "Abe Fujita Hayashi Ito Kato Kobayashi Matsumoto Nakamura Sato Suzuki Takahashi Tanaka Watanabe "
                "Yamada Yamamoto Yoshida Inoue Kimura Shimizu Yamaguchi Saito Sasaki Matsuda Okada Hasegawa "
                "Ishikawa Maeda Fujii Ogawa Goto",
    "Chinese": "Hou Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng Liang "
               "Xie Song Tang Han Feng Deng Cao",
}


def tiny_config(task: str = "classify"):
    cfg = preset("names", task)
    cfg.model.embed = cfg.model.hidden = 16
    cfg.model.layers = 1
    cfg.model.bidirectional = False
    cfg.model.generative = 0
    cfg.batch_size, cfg.warmup, cfg.lr, cfg.threads = 16, 5, 1e-2, 1
    return cfg


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("labdata")
    (root / "names").mkdir()
    for language, names in NAMES.items():
        (root / "names" / f"{language}.txt").write_text("\n".join(names.split()) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def compared(data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    out = tmp_path_factory.mktemp("compare")
    base = tiny_config()
    base.model.generative = 8  # compare leaves it out: it would be an LSTM beside every spec
    rows = compare_models("names", "classify", SPECS, data_dir=data, out=out, budget_steps=STEPS,
                          budget_seconds=None, seed=0, base=base)
    return out, rows


def is_png(path: Path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


# ---------------------------------------------------------------------------------------------
# compare


def test_compare_trains_every_spec_under_one_budget(compared):
    out, rows = compared
    assert [r["label"] for r in rows] == SPECS
    assert {r["steps"] for r in rows} == {STEPS}
    assert [(r["model"], r["cell"]) for r in rows] == [("rnn", "torch"), ("lstm", "torch"), ("gru", "torch"),
                                                       ("lstm", "custom")]
    for r in rows:
        assert r["params"] > 0 and r["wall_s"] > 0 and 0 < r["ms_per_step"] < 1000 * r["wall_s"]
        assert 0 <= r["test_accuracy"] <= 1 and 0 <= r["test_macro_f1"] <= 1
        assert r["train_loss"] > 0 and r["val_loss"] > 0
    # the hand-written LSTM is the same network as nn.LSTM: same size, and (same seed) the same losses,
    # although the runs took turns (each keeps its own random numbers)
    assert rows[1]["params"] == rows[3]["params"]
    assert rows[3]["val_loss"] == pytest.approx(rows[1]["val_loss"], rel=1e-3)
    assert {p.name for p in out.iterdir()} >= {"rnn", "lstm", "gru", "lstm-custom"}
    assert {json.loads((out / p / "config.json").read_text())["model"]["generative"] for p in ("rnn", "lstm")} == {0}
    # the models took TURNS turns each: a step is timed from the step before it in the same turn
    assert json.loads((out / "rnn" / "timing.json").read_text())["steps_timed"] == STEPS - TURNS
    for label in ("rnn", "lstm"):  # an evaluation at the end of every turn: curves with 20 points
        assert len((out / label / "metrics.jsonl").read_text().splitlines()) >= TURNS


def test_compare_writes_table_json_and_figure(compared):
    out, _ = compared
    assert is_png(out / "compare.png")
    assert is_png(out / "lstm" / "curves.png")
    saved = json.loads((out / "compare.json").read_text(encoding="utf-8"))
    assert saved["budget_steps"] == STEPS and [r["label"] for r in saved["rows"]] == SPECS
    md = (out / "compare.md").read_text(encoding="utf-8")
    assert "| model | cell | params | steps | wall time (s)" in md
    assert "test accuracy" in md and "test macro-F1" in md
    assert "| lstm:custom | custom |" in md
    assert "compare.png" in md


def test_compare_stops_every_model_after_the_same_turns_at_a_deadline(data, tmp_path):
    import time

    rows = compare_models("names", "classify", ["rnn", "gru"], data_dir=data, out=tmp_path, budget_steps=STEPS,
                          seed=0, base=tiny_config(), deadline=time.perf_counter())  # past after the first round
    assert [(r["turns"], r["stopped_early"], r["steps"]) for r in rows] == [(1, True, STEPS // TURNS)] * 2


def test_compare_refuses_bad_specs_and_used_folders(compared, data, tmp_path):
    with pytest.raises(PoetgenError, match="did you mean 'lstm'"):
        parse_spec("lstn")
    with pytest.raises(PoetgenError, match="unknown model spec 'lstm:cuda'"):
        compare_models(models=["lstm:cuda"], data_dir=data, out=tmp_path, budget_steps=1, budget_seconds=None)
    with pytest.raises(PoetgenError, match="listed twice"):
        compare_models(models=["lstm", "LSTM:torch"], data_dir=data, out=tmp_path, budget_steps=1,
                       budget_seconds=None)
    with pytest.raises(PoetgenError, match="at least 1"):
        compare_models(models=["rnn"], data_dir=data, out=tmp_path, budget_steps=0, budget_seconds=None)
    out, _ = compared
    with pytest.raises(PoetgenError, match="already holds a run"):
        compare_models(models=["rnn"], data_dir=data, out=out, budget_steps=1, budget_seconds=None)
    assert parse_spec(" GRU:Custom ") == ("gru", "custom") and parse_spec("rnn") == ("rnn", "torch")


# ---------------------------------------------------------------------------------------------
# report


def test_report_of_two_classifiers(compared, data, tmp_path):
    out, _ = compared
    md_path = write_report([out / "rnn", out / "lstm"], tmp_path / "report", data_dir=data)
    md = md_path.read_text(encoding="utf-8")
    page = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    for text in (md, page):
        assert "RNN(16, 16" in text and "LSTM(16, 16" in text and "Linear(" in text  # print(model)
        assert "Comparison" in text and "test macro-F1" in text
        assert "Confusion matrix" in text and "balanced accuracy" in text and "precision" in text
        for name in ("Dovesky", "Jackson", "Hou"):
            assert name in text
    assert "Hou | Chinese" in md  # the tiny Chinese list contains Hou: it must win
    # compare + curves & confusion per run + the evidence: gradient flow, accuracy by length, forget gates,
    # + the best gated model's confusion matrix shown again outside the folded details
    assert page.count("data:image/png;base64,") == 9
    assert "<details><summary>rnn — classify" in page and "Conclusion" in md and "Training settings" in md
    assert '<img alt="' in page and 'src="http' not in page and ".png\"" not in page  # one file
    for image in ("compare.png", "rnn-curves.png", "rnn-confusion.png", "lstm-confusion.png"):
        assert f"]({image})" in md and is_png(tmp_path / "report" / image)


def test_report_of_a_name_generator(data, tmp_path):
    cfg = tiny_config("lm")
    cfg.max_steps, cfg.eval_every, cfg.data_dir = 15, 5, str(data)
    Trainer(cfg, tmp_path / "gen").fit()
    md = write_report([tmp_path / "gen"], tmp_path / "report", data_dir=data).read_text(encoding="utf-8")
    assert "names generator" in md and "Held-out test NLL" in md
    assert "Generated names" in md and "| Russian |" in md and "new names" in md
    assert "Comparison" not in md  # one run: nothing to compare
    assert is_png(plot_compare({"gen": tmp_path / "gen"}, tmp_path / "lm.png"))  # loss against wall time


def test_report_of_a_poem_model(tiny_data, tmp_path):
    from poetgen.config import TrainConfig
    from poetgen.model import ModelConfig

    cfg = TrainConfig(corpus="tang", data_dir=str(tiny_data), model=ModelConfig(embed=16, hidden=24, layers=1),
                      epochs=1, batch_size=8, lr=1e-2, warmup=2, eval_every=3, threads=1)
    Trainer(cfg, tmp_path / "poems").fit()
    md = write_report([tmp_path / "poems"], tmp_path / "report", data_dir=tiny_data).read_text(encoding="utf-8")
    assert "poem language model" in md and "Held-out test NLL" in md and "Sample poems" in md


def test_report_refuses_folders_that_are_not_runs(tmp_path):
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "empty", tmp_path / "missing"):
        with pytest.raises(PoetgenError) as e:
            write_report([bad], tmp_path / "report")
        assert "\n" not in str(e.value) and str(bad) in str(e.value)


# ---------------------------------------------------------------------------------------------
# plots and metrics


def test_plot_functions_write_pngs(compared, tmp_path):
    out, _ = compared
    assert is_png(plot_run(out / "gru")) and (out / "gru" / "curves.png").is_file()
    assert is_png(plot_compare({"a": out / "rnn", "b": out / "gru"}, tmp_path / "both.png"))
    labels = [f"Language{i}" for i in range(18)]
    matrix = [[(50 if i == j else (i * j) % 4) for j in range(18)] for i in range(18)]
    assert is_png(plot_confusion(labels, matrix, tmp_path / "cm.png"))
    with pytest.raises(PoetgenError, match="expected 3×3"):
        plot_confusion(["a", "b", "c"], [[1, 2], [3, 4]], tmp_path / "bad.png")


def test_read_metrics_skips_a_torn_last_line_only(tmp_path):
    good = '{"step": 1, "train_loss": 2.0, "val_loss": 2.1}\n{"step": 2, "train_loss": 1.5, "val_loss": 1.7}\n'
    (tmp_path / "metrics.jsonl").write_text(good + '{"step": 3, "train_lo', encoding="utf-8")
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]
    assert is_png(plot_run(tmp_path))
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "tr\n{"step": 3}\n', encoding="utf-8")
    with pytest.raises(PoetgenError, match="line 2 is not JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('[1, 2]\n', encoding="utf-8")
    with pytest.raises(PoetgenError, match="not an evaluation record"):
        read_metrics(tmp_path)
    with pytest.raises(PoetgenError, match="not a training run"):
        read_metrics(tmp_path / "nowhere")
