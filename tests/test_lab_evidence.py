"""The lab's evidence (lab.evidence, lab.findings) and `poetgen lab` (lab.session): tiny models of
every classifier type, trained in seconds on a tiny three-language names corpus, measured for
real and checked against direct computations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_data
from test_lab import NAMES, tiny_config
from torch import nn
from typer.testing import CliRunner

from poetgen.checkpoint import load_checkpoint
from poetgen.cli import app
from poetgen.data import encode
from poetgen.errors import PoetgenError
from poetgen.evaluate import classifier_predictions, split_samples
from poetgen.lab import session
from poetgen.lab.compare import compare_models, folder_name
from poetgen.lab.evidence import (
    _batches,
    accuracy_by_length,
    forget_gates,
    gradient_flow,
    input_gradient_norms,
    lstm_gates,
    measure,
    recurrence,
    recurrent_matrix,
    summarise_gates,
)
from poetgen.lab.report import write_report

CLASSIFIERS = ["tutorial-rnn", "rnn", "lstm", "lstm:custom", "gru"]
GENERATORS = ["tutorial-rnn", "lstm"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Tang poems, and 30 names in each of three languages (a batch of 64 fits)."""
    root = write_tiny_data(tmp_path_factory.mktemp("evidence-data"))
    for old in (root / "names").iterdir():
        old.unlink()
    for language, names in NAMES.items():
        (root / "names" / f"{language}.txt").write_text("\n".join(names.split()) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def runs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run folders of every classifier type and two names generators, 40 and 20 steps."""
    out = tmp_path_factory.mktemp("evidence-runs")
    compare_models("names", "classify", CLASSIFIERS, data_dir=data, out=out / "cls", budget_steps=40,
                   seed=0, base=tiny_config())
    compare_models("names", "lm", GENERATORS, data_dir=data, out=out / "gen", budget_steps=20, seed=0,
                   base=tiny_config("lm"))
    return {**{m: out / "cls" / folder_name(m) for m in CLASSIFIERS},
            **{f"gen-{m}": out / "gen" / folder_name(m) for m in GENERATORS}}


@pytest.fixture(scope="module")
def models(runs: dict[str, Path]) -> dict[str, nn.Module]:
    return {label: load_checkpoint(run).model for label, run in runs.items()}


def every_name(run: Path, data: Path) -> list:
    """Every name of the tiny corpus, encoded for the run's model (the validation split alone has nine)."""
    ck = load_checkpoint(run)
    samples = [s for split in ("train", "val", "test") for s in split_samples(ck, data, split)[1]]
    return encode(samples, ck.tokenizer, ck.categories)


@pytest.fixture(scope="module")
def examples(runs: dict[str, Path], data: Path) -> list:
    return every_name(runs["lstm"], data)


@pytest.fixture(scope="module")
def lm_examples(runs: dict[str, Path], data: Path) -> list:
    return every_name(runs["gen-lstm"], data)


def one_batch(model: nn.Module, examples: list) -> dict:
    return next(_batches(model, examples, len(examples)))


# ---------------------------------------------------------------------------------------------
# Gradient flow


@pytest.mark.parametrize("label", [*CLASSIFIERS, *(f"gen-{m}" for m in GENERATORS)])
def test_gradient_flow_is_per_distance_and_finite(models, examples, lm_examples, label):
    model = models[label]
    examples = examples if model.cfg.task == "classify" else lm_examples
    flow = gradient_flow(model, examples, min_count=5)
    reach = 0 if model.cfg.task == "classify" else 1  # a language model also reads <bos>
    assert flow.distances == list(range(len(flow.distances))) and len(flow.distances) >= 6
    assert flow.counts == [sum(len(e.ids) + reach > d for e in examples) for d in flow.distances]
    assert min(flow.counts) >= 5 and flow.counts[0] == len(examples)
    assert all(torch.isfinite(torch.tensor(flow.mean_norm))) and flow.mean_norm[0] > 0
    assert flow.relative()[0] == pytest.approx(1.0) and flow.at(len(flow.distances)) is None
    assert all(p.grad is None for p in model.parameters())  # measuring leaves the model as it was


def test_gradient_norms_are_per_example_and_zero_after_the_end(models, examples, lm_examples):
    for label in ("lstm", "tutorial-rnn", "gen-tutorial-rnn"):
        model = models[label]
        names = (examples if model.cfg.task == "classify" else lm_examples)[:12]
        together = input_gradient_norms(model, one_batch(model, names))
        by_length = sorted(range(len(names)), key=lambda i: len(names[i].ids))  # the batch's order
        for b in range(4):
            alone = input_gradient_norms(model, one_batch(model, [names[by_length[b]]]))
            width = alone.shape[1]
            assert torch.allclose(together[b, :width], alone[0], rtol=1e-4, atol=1e-7), label
            assert (together[b, width:] == 0).all()


def test_embedding_gradient_matches_a_direct_computation(models, examples):
    """nn.LSTM classifier: ∂loss/∂x from a leaf tensor fed through the model's own layers."""
    model = models["lstm"]
    batch = one_batch(model, examples[:16])
    x = model.embed(batch["tokens"]).detach().requires_grad_()
    packed = nn.utils.rnn.pack_padded_sequence(x, batch["lengths"], batch_first=True, enforce_sorted=False)
    _, (h, _) = model.rnn(packed)
    features = [h[-1], model.ngram_bag(batch["tokens"], batch["lengths"])] if model.ngrams is not None else [h[-1]]
    loss = nn.functional.cross_entropy(model.out(torch.cat(features, -1)), batch["labels"], reduction="sum")
    loss.backward()
    assert torch.allclose(input_gradient_norms(model, batch), x.grad.norm(dim=-1), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("label", ["tutorial-rnn", "gen-tutorial-rnn"])
def test_one_hot_gradient_matches_a_leaf_one_hot_tensor(models, examples, lm_examples, label, monkeypatch):
    """The tutorial's RNNs build their one-hot input inside forward: catch it as a leaf tensor."""
    model = models[label]
    batch = one_batch(model, (examples if model.cfg.task == "classify" else lm_examples)[:16])
    expected = input_gradient_norms(model, batch)
    leaves = []
    real = nn.functional.one_hot

    def one_hot(tokens, classes):
        leaf = real(tokens, classes).float().requires_grad_()
        leaves.append(leaf)
        return leaf

    monkeypatch.setattr(nn.functional, "one_hot", one_hot)
    if model.cfg.task == "classify":
        loss = nn.functional.cross_entropy(model(batch["tokens"], batch["lengths"]), batch["labels"],
                                           reduction="sum")
    else:
        log_p = model.token_log_probs(batch["tokens"], batch["targets"], batch["category"])
        loss = -log_p.gather(1, batch["ends"][:, None]).sum()
    monkeypatch.undo()
    letters = leaves[0]  # the generator also one-hot encodes the language: that call comes second
    (grad,) = torch.autograd.grad(loss, letters)
    assert torch.allclose(expected, grad.norm(dim=-1), rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Accuracy by name length


def test_accuracy_by_length_buckets_add_up(models, examples):
    for label in CLASSIFIERS:
        buckets = accuracy_by_length(models[label], examples)
        assert [b.label for b in buckets] == ["≤4", "5–6", "7–8", "9–10", "≥11"]
        assert sum(b.count for b in buckets) == len(examples)
        preds, labels, _ = classifier_predictions(models[label], examples)
        assert sum(b.correct for b in buckets) == int((preds == labels).sum())
        for b in buckets:
            assert b.count == sum(b.low <= len(e.ids) <= (b.high or 99) for e in examples)
            assert 0 <= b.accuracy <= 1 if b.count else b.accuracy != b.accuracy  # NaN when empty
    assert [b.label for b in accuracy_by_length(models["gru"], examples, edges=(5,))] == ["≤5", "≥6"]


# ---------------------------------------------------------------------------------------------
# Forget gates


@pytest.mark.parametrize("label", ["lstm", "lstm:custom"])
def test_forget_gates_match_the_lstm_weights(models, examples, label):
    """σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf), with h the network's own outputs."""
    model = models[label]
    rnn, hidden = model.rnn, model.cfg.hidden
    batch = one_batch(model, examples[:16])
    x = model.embed(batch["tokens"]).detach()
    with torch.no_grad():
        outputs, gates = lstm_gates(rnn, x, batch["lengths"])
        for b in range(4):
            n = int(batch["lengths"][b])
            own, _ = rnn(x[b : b + 1, :n])  # the network's own hidden states for this name
            assert torch.allclose(outputs[b, :n], own[0], atol=1e-5)
            previous = torch.cat([torch.zeros(1, hidden), own[0, :-1]])
            w_if, w_hf = rnn.weight_ih_l0[hidden : 2 * hidden], rnn.weight_hh_l0[hidden : 2 * hidden]
            direct = torch.sigmoid(x[b, :n] @ w_if.T + rnn.bias_ih_l0[hidden : 2 * hidden]
                                   + previous @ w_hf.T + rnn.bias_hh_l0[hidden : 2 * hidden])
            assert torch.allclose(gates[0, b, :n], direct, atol=1e-5)
    values = forget_gates(model, examples)
    assert len(values) == hidden * sum(len(e.ids) for e in examples)
    assert ((values > 0) & (values < 1)).all()
    s = summarise_gates(values)
    assert 0 < s.mean < 1 and 0 <= s.below <= s.below + s.above <= 1 and s.count == len(values)


def test_lstm_gates_run_stacked_and_bidirectional_lstms_like_torch():
    torch.manual_seed(0)
    rnn = nn.LSTM(5, 7, num_layers=2, batch_first=True, bidirectional=True)
    x, lengths = torch.randn(3, 6, 5), torch.tensor([6, 4, 2])
    packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    with torch.no_grad():
        expected, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True)
        outputs, gates = lstm_gates(rnn, x, lengths)
    assert gates.shape == (4, 3, 6, 7)
    assert torch.allclose(outputs, expected, atol=1e-5)


def test_measure_gives_what_applies_to_each_model(models, examples, lm_examples):
    assert measure(models["gru"], examples).gates is None
    lstm = measure(models["lstm"], examples)
    assert lstm.gates is not None and lstm.lengths is not None
    generator = measure(models["gen-lstm"], lm_examples)
    assert generator.lengths is None and generator.gradient.distances
    # a conditional language model's LSTM reads the letter and the language: every real step, <bos> too
    assert len(generator.gates) == models["gen-lstm"].cfg.hidden * sum(len(e.ids) + 1 for e in lm_examples)


def test_recurrent_matrix_is_what_one_step_back_multiplies(models):
    """The tutorial's hidden state enters i2h linearly: i2h(x, h1) - i2h(x, h2) = W (h1 - h2)."""
    for label in ("tutorial-rnn", "gen-tutorial-rnn"):
        model = models[label]
        w = recurrent_matrix(model)
        hidden, width = model.cfg.hidden, model.i2h.in_features
        x, h1, h2 = torch.rand(width - hidden), torch.randn(hidden), torch.randn(hidden)
        with torch.no_grad():
            step = model.i2h(torch.cat([x, h1])) - model.i2h(torch.cat([x, h2]))
        assert torch.allclose(step, w @ (h1 - h2), atol=1e-5)
    assert torch.equal(recurrent_matrix(models["rnn"]), models["rnn"].rnn.weight_hh_l0)
    for label in ("tutorial-rnn", "rnn"):
        r = recurrence(models[label])
        assert 0 < r.radius <= r.norm + 1e-9 and r.linear == (label == "tutorial-rnn")
    assert recurrence(models["lstm"]) is None and recurrence(models["gru"]) is None


# ---------------------------------------------------------------------------------------------
# The report and `poetgen lab`


def test_report_states_the_evidence(runs, data, tmp_path):
    folders = [runs[m] for m in CLASSIFIERS] + [runs["gen-tutorial-rnn"]]
    md = write_report(folders, tmp_path / "report", data_dir=data, samples=False).read_text(encoding="utf-8")
    assert "## Why does the LSTM beat the RNN? Evidence from these runs" in md
    for heading in ("### Gradient flow (names classifiers)", "### Accuracy by name length",
                    "### Forget gates (names classifiers: lstm and lstm-custom)",
                    "### Gradient flow (names generators)"):
        assert heading in md
    assert "letters before the end the gradient is" in md and "of its value at the last letter for" in md
    assert "accuracy goes" in md and "training" in md and "mean forget gate" in md
    assert "has no nonlinearity between steps" in md and "largest singular value" in md  # tutorial, rnn
    for png in ("evidence-gradient.png", "evidence-length.png", "evidence-gates.png", "evidence-names-gradient.png"):
        assert f"]({png})" in md and (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"
    record = json.loads((tmp_path / "report" / "evidence.json").read_text(encoding="utf-8"))
    # the two tutorial-rnn folders clash, so the report names them with their parents
    assert set(record["classify"]["gradient"]) == {"cls/tutorial-rnn", "rnn", "lstm", "lstm-custom", "gru"}
    assert set(record["names"]["gradient"]) == {"gen/tutorial-rnn"}
    ck = load_checkpoint(runs["lstm"])
    val = len(split_samples(ck, data, "val")[1])
    assert all(sum(b["count"] for b in rows) == val for rows in record["classify"]["length"].values())
    assert set(record["classify"]["gates"]) == {"lstm", "lstm-custom"}
    assert "Comparison of the names classifiers" in md and "Comparison of the names generators" not in md
    plain = write_report(folders[:2], tmp_path / "plain", data_dir=data, samples=False, evidence=False)
    assert "Why does the LSTM" not in plain.read_text(encoding="utf-8")


def test_lab_budget_is_shared_out_by_phase_and_checked():
    import time

    from poetgen.lab.schedule import PHASES, Clock

    lines: list[str] = []
    clock = Clock(600, lines.append)
    share = clock.phase("classifiers")
    assert share == pytest.approx(600 * PHASES["classifiers"], rel=0.01)  # the shares add up to 1
    assert session.classifier_seconds(share) * len(session.CLASSIFIERS) == pytest.approx(0.9 * share)
    assert lines[-1].startswith("[1/5] classifiers: ") and "left in the lab" in lines[-1]
    # the classifiers overran: 500 s of 600 gone, so every later phase shrinks alike
    late = Clock(600, lines.append, start=time.perf_counter() - 500)
    later = [p for p in PHASES if p not in ("classifiers", "report")]
    share = late.phase(later[0])  # the report's reserve (48 s) stays; the rest is shared out
    assert share == pytest.approx((100 - 48) * PHASES[later[0]] / sum(PHASES[p] for p in later), rel=0.02)
    assert late.deadline == pytest.approx(time.perf_counter() + share, abs=1)
    assert late.phase("report") == pytest.approx(100, abs=1)  # the report takes what is left
    assert Clock(600, start=time.perf_counter() - 700).phase("report") == 0  # past the deadline: nothing left
    assert Clock(60).reserve() == 24 and Clock(100).reserve() == 30  # small budgets: a floor, at most 40%
    for bad in (0, -5, float("nan"), float("inf")):
        with pytest.raises(PoetgenError, match="positive number of seconds"):
            Clock(bad)


@pytest.mark.parametrize(("args", "message"), [
    (["--seconds", "0"], "the lab's time budget must be a positive number of seconds, got 0"),
    (["--seed", "-1"], "--seed must be"),
    (["--out", "{full}"], "is not empty; the lab needs a new or empty folder"),
    (["--data-dir", "{missing}"], "missing"),
])
def test_lab_command_refuses_bad_input_in_one_line(tmp_path, args, message):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    args = [a.format(full=tmp_path / "full", missing=tmp_path / "missing") for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "lab")]
    result = CliRunner().invoke(app, ["lab", *out, *args], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "lab").exists()  # refused before anything was written


@pytest.mark.slow
def test_lab_command_writes_the_whole_report(data, tmp_path):
    env = {**os.environ, "COLUMNS": "120"}
    # 30 s: each classifier's 20 turns are ~0.17 s of its own training, several steps even on a busy
    # machine (at 4 s a turn was shorter than one loaded step, and a curve could end with 11 points).
    result = subprocess.run([sys.executable, "-m", "poetgen", "lab", "--seconds", "30", "--data-dir", str(data),
                             "--out", str(tmp_path / "lab")], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "report" in result.stdout
    report = tmp_path / "lab" / "report"
    md = (report / "report.md").read_text(encoding="utf-8")
    for text in ("## Why does the LSTM beat the RNN?", "### Top-3 predictions", "| Dovesky |", "| Jackson",
                 "| Hou |", "Comparison of the names classifiers", "### Confusion matrix",
                 "Generated names", "Sample poems", "TutorialClassifier(", "LSTM(64, 128", "hand-written"):
        assert text in md, text
    assert (report / "report.html").is_file() and (report / "compare.png").is_file()
    for spec in ("tutorial-rnn", "rnn", "lstm", "lstm-custom", "gru", "gru-custom"):
        points = (tmp_path / "lab" / "classify" / spec / "metrics.jsonl").read_text().splitlines()
        assert len(points) >= 20, spec  # the lab's curves have at least 20 validation points
        assert (report / f"{spec}-curves.png").is_file() and (report / f"{spec}-confusion.png").is_file()
