"""The trainer on tiny corpora: every model and cell trains, losses start at ln V, a batch can be
overfitted, seeds reproduce, an interrupted run resumes to the same weights, DDP matches one process."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from poetgen.checkpoint import load_checkpoint
from poetgen.config import TrainConfig
from poetgen.data import collate_lm
from poetgen.errors import PoetgenError
from poetgen.model import LanguageModel, ModelConfig
from poetgen.train import Trainer
from poetgen.vocab import PAD


def config(data: Path, **overrides) -> TrainConfig:
    model = overrides.pop("model", ModelConfig(embed=16, hidden=24, layers=1, dropout=0.0))
    base = {"corpus": "tang", "data_dir": str(data), "epochs": 2, "batch_size": 8, "lr": 1e-2, "warmup": 2,
            "eval_every": 5, "threads": 1, "seed": 1}
    return TrainConfig(model=model, **{**base, **overrides})


def weights(run: Path, name: str = "last") -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {k: v for k, v in load_file(str(run / f"{name}.safetensors")).items() if not k.startswith("_")}


@pytest.mark.parametrize("model", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("cell", ["torch", "custom"])
def test_every_model_and_cell_trains_and_loads(tiny_data: Path, tmp_path: Path, model: str, cell: str):
    cfg = config(tiny_data, max_steps=6, model=ModelConfig(model=model, cell=cell, embed=8, hidden=12, layers=2))
    record = Trainer(cfg, tmp_path / "run").fit()
    assert record["step"] == 6 and math.isfinite(record["val_loss"])
    ck = load_checkpoint(tmp_path / "run")
    assert ck.config.model == model and ck.config.cell == cell and ck.kind == "poems"
    assert (tmp_path / "run" / "metrics.jsonl").read_text().count("\n") >= 1


def test_classifier_trains_on_names(tiny_data: Path, tmp_path: Path):
    cfg = config(tiny_data, corpus="names", task="classify", max_steps=60, eval_every=30, lr=2e-2,
                 model=ModelConfig(task="classify", embed=16, hidden=32, layers=1, dropout=0.0))
    record = Trainer(cfg, tmp_path / "cls").fit()
    assert record["val_accuracy"] >= 0.5  # three very different spellings: chance is 1/3
    assert 0 <= record["val_macro_f1"] <= 1
    ck = load_checkpoint(tmp_path / "cls")
    assert ck.kind == "classify" and ck.categories == ["Japanese", "Polish", "Russian"]


def test_initial_loss_is_about_log_vocab(tiny_data: Path, tmp_path: Path):
    trainer = Trainer(config(tiny_data), tmp_path / "run")
    batch = trainer._collate(list(range(8)))
    with torch.no_grad():
        loss, _, count = trainer._loss(batch)
    assert abs(loss.item() / count - math.log(len(trainer.tokenizer))) < 0.5


@pytest.mark.parametrize("adaptive", [False, True])
def test_can_overfit_one_batch(tiny_data: Path, tmp_path: Path, adaptive: bool):
    model = ModelConfig(embed=32, hidden=64, layers=1, dropout=0.0, adaptive=adaptive)
    trainer = Trainer(config(tiny_data, model=model, lr=1e-2, schedule="constant", warmup=0), tmp_path / "run")
    idx = list(range(8))
    for _ in range(150):
        loss = trainer.train_step(idx).objective
    assert loss < 0.3, f"could not overfit a single batch (loss {loss:.2f}): wiring bug?"


@pytest.mark.parametrize("vocab_size", [5, 6, 150, 202, 203, 1001, 1002, 6765])
def test_default_adaptive_clusters_give_a_distribution_for_any_vocabulary(vocab_size: int):
    """The default clusters fit every vocabulary size (a user's text file may have 6 or 6,000
    characters), and the adaptive output is a proper distribution that the loss agrees with."""
    model = LanguageModel(ModelConfig(vocab_size=vocab_size, embed=8, hidden=16, layers=1, dropout=0.0,
                                      adaptive=True).validate()).eval()
    tokens = torch.randint(1, vocab_size, (3, 5))
    targets = torch.randint(1, vocab_size, (3, 5))
    with torch.no_grad():
        logp = model.log_probs(model.features(tokens)[0])
        nll = model(tokens, targets).sum()
    assert torch.allclose(logp.exp().sum(-1), torch.ones(3, 5), atol=1e-4)
    picked = -logp.gather(-1, targets[..., None]).sum()
    assert torch.allclose(nll, picked, rtol=1e-4)


def test_cluster_sorted_adaptive_scores_equal_torchs_adaptive_softmax():
    """The trainer's adaptive scoring (positions sorted by cluster) gives the numbers and the
    gradients of ``AdaptiveLogSoftmaxWithLoss.forward``, padding left out."""
    torch.manual_seed(0)
    model = LanguageModel(ModelConfig(vocab_size=300, embed=8, hidden=16, layers=1, dropout=0.0, adaptive=True,
                                      cutoffs=[20, 100]).validate())
    h = torch.randn(4, 9, 16, requires_grad=True)
    targets = torch.randint(1, 300, (4, 9))
    targets[1, 5:] = PAD
    targets[3, :] = PAD
    ours = model.target_log_probs(h, targets)
    mask = targets != PAD
    theirs = torch.zeros(4, 9).masked_scatter(mask, model.head(h[mask], targets[mask]).output)
    assert torch.allclose(ours, theirs, atol=1e-5) and (ours[~mask] == 0).all()
    (g_ours,) = torch.autograd.grad(ours.sum(), h)
    (g_theirs,) = torch.autograd.grad(theirs.sum(), h)
    assert torch.allclose(g_ours, g_theirs, atol=1e-5)


def test_padding_never_counts(tiny_data: Path, tmp_path: Path):
    trainer = Trainer(config(tiny_data), tmp_path / "run")
    examples = [trainer.train_set[0], trainer.train_set[1]]
    alone = [collate_lm([e]) for e in examples]
    together = collate_lm(examples)
    model = trainer.model.eval()
    with torch.no_grad():
        separate = sum(model(b["tokens"], b["targets"], b["category"]).item() for b in alone)
        joint = model(together["tokens"], together["targets"], together["category"]).sum().item()
    assert joint == pytest.approx(separate, rel=1e-5)


def test_class_weights_balance_the_loss_by_category(tiny_data: Path, tmp_path: Path):
    plain = Trainer(config(tiny_data, corpus="names", task="classify",
                           model=ModelConfig(task="classify", embed=8, hidden=8, layers=1, dropout=0.0)),
                    tmp_path / "plain")
    assert plain.data.class_weights is None
    cfg = config(tiny_data, corpus="names", task="classify", class_weight_power=1.0,
                 model=ModelConfig(task="classify", embed=8, hidden=8, layers=1, dropout=0.0))
    balanced = Trainer(cfg, tmp_path / "balanced")
    labels = torch.tensor([e.category for e in balanced.train_set])
    counts = torch.bincount(labels, minlength=len(balanced.categories)).float()
    w = balanced.data.class_weights
    assert w[labels].mean().item() == pytest.approx(1.0)  # the loss keeps its scale
    present = counts > 0
    assert torch.allclose((w * counts)[present], (w * counts)[present][0])  # p = 1: every class weighs the same
    # The weighted loss of a batch is the per-name losses times their class weights.
    batch = balanced._collate(list(range(8)))
    with torch.no_grad():
        weighted, _, _ = balanced._loss(batch)
        logits = balanced.model(batch["tokens"], batch["lengths"])
        each = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="none")
    assert weighted.item() == pytest.approx((each * w[batch["labels"]]).sum().item(), rel=1e-5)


def test_weighted_language_model_loss_scales_each_sequence(tiny_data: Path, tmp_path: Path):
    trainer = Trainer(config(tiny_data, class_weight_power=0.5), tmp_path / "run")
    model = trainer.model.eval()
    batch = collate_lm(trainer.train_set[:2])
    with torch.no_grad():
        each = [model(b["tokens"], b["targets"], b["category"]).item()
                for b in (collate_lm([e]) for e in trainer.train_set[:2])]
        objective, plain, _ = trainer._loss(batch)
    w = trainer.data.class_weights[batch["category"]]
    assert plain.item() == pytest.approx(each[0] + each[1], rel=1e-5)  # the curve: plain cross-entropy
    assert objective.item() == pytest.approx(w[0].item() * each[0] + w[1].item() * each[1], rel=1e-5)


def test_same_seed_same_numbers(tiny_data: Path, tmp_path: Path):
    model = ModelConfig(embed=16, hidden=24, layers=2, dropout=0.3)
    a = Trainer(config(tiny_data, max_steps=8, model=model), tmp_path / "a").fit()
    b = Trainer(config(tiny_data, max_steps=8, model=ModelConfig(**model.to_dict())), tmp_path / "b").fit()
    assert a["val_loss"] == b["val_loss"]
    for k, v in weights(tmp_path / "a").items():
        assert torch.equal(v, weights(tmp_path / "b")[k]), k


def test_interrupted_run_resumes_to_identical_weights(tiny_data: Path, tmp_path: Path):
    model = ModelConfig(embed=16, hidden=24, layers=2, dropout=0.3)
    Trainer(config(tiny_data, model=model), tmp_path / "full").fit()

    def interrupt_at_step_7(event: dict) -> None:
        if event["step"] == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tiny_data, model=ModelConfig(**model.to_dict())), tmp_path / "cut").fit(log=interrupt_at_step_7)
    resumed = Trainer(config(tiny_data, model=ModelConfig(**model.to_dict())), tmp_path / "cut", resume=True)
    assert resumed.state.step == 7
    resumed.fit()
    full, cut = weights(tmp_path / "full"), weights(tmp_path / "cut")
    for k in full:
        torch.testing.assert_close(cut[k], full[k], rtol=0, atol=0, msg=k)


def test_resume_refuses_a_different_config(tiny_data: Path, tmp_path: Path):
    Trainer(config(tiny_data, max_steps=3), tmp_path / "run").fit()
    with pytest.raises(PoetgenError, match="hidden=24, not 32"):
        Trainer(config(tiny_data, model=ModelConfig(embed=16, hidden=32, layers=1)), tmp_path / "run", resume=True)
    with pytest.raises(PoetgenError, match="already holds a run"):
        Trainer(config(tiny_data), tmp_path / "run")


def test_resume_refuses_weights_that_do_not_match_the_model(tiny_data: Path, tmp_path: Path):
    """Resume loads strictly: a stray or missing tensor in `last` is an error, never skipped."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    Trainer(config(tiny_data, max_steps=3), tmp_path / "run").fit()
    last = tmp_path / "run" / "last.safetensors"
    with safe_open(str(last), framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    for tampered in ({**tensors, "rnn.weight_stray": torch.zeros(2)},
                     {k: v for k, v in tensors.items() if k != "embed.weight"}):
        save_file(tampered, str(last), metadata=meta)
        with pytest.raises(PoetgenError, match="weights do not match the config"):
            Trainer(config(tiny_data, max_steps=6), tmp_path / "run", resume=True)


def test_bad_settings_fail_clearly(tiny_data: Path, tmp_path: Path):
    with pytest.raises(PoetgenError, match="larger than the training set"):
        Trainer(config(tiny_data, batch_size=100_000), tmp_path / "a")
    with pytest.raises(PoetgenError, match="did you mean 'lstm'"):
        Trainer(config(tiny_data, model=ModelConfig(model="lstn")), tmp_path / "b")
    with pytest.raises(PoetgenError, match=r"^hidden must be between"):
        Trainer(config(tiny_data, model=ModelConfig(hidden=0)), tmp_path / "c")
    with pytest.raises(PoetgenError, match="--label-smoothing applies to --task classify"):
        Trainer(config(tiny_data, label_smoothing=0.1), tmp_path / "d")
    with pytest.raises(PoetgenError, match="--class-weight-power must be in"):
        Trainer(config(tiny_data, class_weight_power=2.0), tmp_path / "e")
    with pytest.raises(PoetgenError, match="needs categories"):
        Trainer(config(tiny_data, class_weight_power=0.5, conditional=False), tmp_path / "f")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(PoetgenError, match="cannot write to --out"):
        Trainer(config(tiny_data), blocker / "run")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tiny_data: Path, tmp_path: Path):
    cfg = config(tiny_data, lr=1e30, clip=0.0, warmup=0, schedule="constant", eval_every=1)
    with pytest.raises(PoetgenError, match=r"loss became (nan|inf) at step \d+"):
        Trainer(cfg, tmp_path / "run").fit()
    if (tmp_path / "run" / "last.safetensors").exists():  # loadable, never a half-written file
        load_checkpoint(tmp_path / "run" / "last.safetensors")


@pytest.mark.slow
def test_two_process_ddp_matches_one_process(tiny_data: Path, tmp_path: Path):
    common = ["--corpus", "tang", "--data-dir", str(tiny_data), "--max-steps", "4", "--batch-size", "8",
              "--hidden", "16", "--embed", "8", "--layers", "1", "--dropout", "0", "--eval-every", "2", "--quiet",
              "--full-softmax"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    single = subprocess.run([sys.executable, "-m", "poetgen", "train", *common, "--out", str(tmp_path / "one")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert single.returncode == 0, single.stderr
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "poetgen", "train", *common, "--out", str(tmp_path / "two")],
                         capture_output=True, text=True, env=env, timeout=300)
    # A rank's own error comes first, torchrun's summary of the failure last: show both.
    assert ddp.returncode == 0, ddp.stderr[:2000] + "\n…\n" + ddp.stderr[-1000:]
    one, two = weights(tmp_path / "one"), weights(tmp_path / "two")
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-5, msg=k)


def test_curves_have_twenty_points_and_train_loss_means_what_val_loss_means(tiny_data: Path, tmp_path: Path):
    """eval_every 0 (the presets'): 20 evaluations whatever the run's length. train_loss is plain
    cross-entropy, as val_loss is; the objective with label smoothing is logged beside it."""
    import json

    cfg = config(tiny_data, corpus="names", task="classify", label_smoothing=0.3, eval_every=0, max_steps=40,
                 epochs=1000, model=ModelConfig(task="classify", embed=8, hidden=16, layers=1, dropout=0.0))
    Trainer(cfg, tmp_path / "run").fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(records) >= 20 and records[-1]["step"] == 40
    assert all(abs(r["train_objective"] - r["train_loss"]) > 1e-6 for r in records)
    assert records[-1]["train_loss"] < records[0]["train_loss"]  # it learns


def test_a_time_budget_is_evaluated_at_even_shares(tiny_data: Path, tmp_path: Path):
    import json

    cfg = config(tiny_data, eval_every=0, max_time=2.0, epochs=10_000)
    Trainer(cfg, tmp_path / "run").fit()
    walls = [json.loads(line)["wall_s"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(walls) >= 10 and walls[-1] >= 2.0  # one evaluation per 0.1 s of training (fewer if a step is
    # slower than that), the last at the end


def test_the_dense_training_curve_has_a_point_per_percent_and_resume_trims_it(tiny_data: Path, tmp_path: Path):
    import json

    from poetgen.runs import RunFolder

    Trainer(config(tiny_data, max_steps=300, epochs=1000), tmp_path / "run").fit()
    log = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(3, 301, 3))  # 100 points, every 3rd step
    assert all(r["train_loss"] > 0 and r["train_objective"] > 0 for r in log)
    RunFolder(tmp_path / "run").trim_metrics(150)  # what --resume from step 150 does
    assert max(json.loads(line)["step"] for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()) == 150
