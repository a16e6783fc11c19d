"""Names benchmark: the PyTorch tutorial's RNN against poetgen's classifier, and the shipped generator
against a class-conditional character 4-gram, all on poetgen's leak-free split. Prints ratios.

    python benchmarks/names.py --data-dir ../shared/corpora --seconds 60

1. The tutorial recipe ("classifying names with a character-level RNN"), faithfully: names folded to
   ASCII letters + " .,;'", one-hot letters, ``RNN(i2h: Linear(185→128), i2o: Linear(185→18),
   LogSoftmax)``, NLLLoss, plain SGD at lr 0.005 by hand, one name per step, a random language then
   a random name of it. Trained on OUR training split (distinct names) for ``--seconds`` of wall time.
2. poetgen's classifier for the same wall time: ``poetgen train --corpus names --task classify``
   (``poetgen.train.preset("names", "classify")``, the recipe of the shipped checkpoint). Test accuracy is probed every
   ``--probe-every`` steps to time the first reach of 0.83 (probing is not counted as training
   time; the trainer's own validation passes are).
3. The shipped (or given) generator: held-out NLL per character, classifier agreement, novelty.
4. A class-conditional character 4-gram (interpolated absolute discounting, backing off to lower
   orders and to the language-independent model) on the same test split.

Wall times depend on what else runs on the machine; the script prints the load average beside them.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path

import torch
from throughput import ALL_LETTERS, N_LETTERS, RNN
from torch import Tensor, nn

from poetgen.checkpoint import bundled_checkpoint, load_for
from poetgen.corpora import Sample, load_corpus
from poetgen.data import encode
from poetgen.defaults import NAME_TEMPERATURE
from poetgen.evaluate import classification_report, classifier_predictions
from poetgen.names.evaluate import evaluate_generator
from poetgen.sample import Sampling

TARGET_ACCURACY = 0.83
TARGET_BALANCED, TARGET_MACRO_F1 = 0.65, 0.60  # the issue-16 targets on the test split

# ---------------------------------------------------------------------------------------------
# 1. The tutorial RNN

# The tutorial network itself is shared with throughput.py (one copy of the recipe).


def unicode_to_ascii(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn" and c in ALL_LETTERS)


def line_to_tensor(line: str) -> Tensor:
    tensor = torch.zeros(len(line), 1, N_LETTERS)
    for i, letter in enumerate(line):
        tensor[i][0][ALL_LETTERS.find(letter)] = 1
    return tensor


def tutorial_predict(rnn: RNN, line: str) -> int:
    if not line:  # nothing survives the ASCII fold: the tutorial cannot read it, count it wrong
        return -1
    with torch.no_grad():
        hidden = torch.zeros(1, rnn.hidden_size)
        tensor = line_to_tensor(line)
        for i in range(tensor.size(0)):
            output, hidden = rnn(tensor[i], hidden)
    return int(output.argmax(1))


def run_tutorial(train: list[Sample], test: list[Sample], categories: list[str], seconds: float, seed: int) -> dict:
    random.seed(seed)
    torch.manual_seed(seed)
    category_lines: dict[str, list[str]] = defaultdict(list)
    for s in train:
        line = unicode_to_ascii(s.text)
        if line:
            category_lines[s.category].append(line)
    all_categories = categories
    rnn = RNN(N_LETTERS, 128, len(all_categories))
    criterion = nn.NLLLoss()
    learning_rate = 0.005
    steps, recent = 0, []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        category = random.choice(all_categories)
        line = random.choice(category_lines[category])
        category_tensor = torch.tensor([all_categories.index(category)], dtype=torch.long)
        line_tensor = line_to_tensor(line)
        hidden = torch.zeros(1, rnn.hidden_size)
        rnn.zero_grad()
        for i in range(line_tensor.size()[0]):
            output, hidden = rnn(line_tensor[i], hidden)
        loss = criterion(output, category_tensor)
        loss.backward()
        for p in rnn.parameters():
            p.data.add_(p.grad.data, alpha=-learning_rate)
        steps += 1
        recent = [*recent[-999:], loss.item()]
    wall = time.perf_counter() - start
    preds = torch.tensor([tutorial_predict(rnn, unicode_to_ascii(s.text)) for s in test])
    labels = torch.tensor([all_categories.index(s.category) for s in test])
    unreadable = int((preds < 0).sum())
    preds = torch.where(preds < 0, (labels + 1) % len(all_categories), preds)  # wrong on purpose
    report = classification_report(preds, labels, len(all_categories))
    return {"steps": steps, "wall_s": wall, "loss_last_1000": sum(recent) / max(len(recent), 1),
            "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "balanced_accuracy": report["balanced_accuracy"], "unreadable_test_names": unreadable,
            "net": str(rnn).replace("\n", " ")}


# ---------------------------------------------------------------------------------------------
# 2. poetgen's default classifier under the same wall budget


class _Budget(Exception):
    pass


def run_poetgen(data_dir: str, seconds: float, threads: int, probe_every: int, seed: int,
                overrides: dict | None = None) -> dict:
    from poetgen.config import preset
    from poetgen.train import Trainer

    cfg = preset("names", "classify")
    cfg.data_dir, cfg.threads, cfg.seed, cfg.patience = data_dir, threads, seed, 0
    for key, value in (overrides or {}).items():  # e.g. a shorter LR schedule, unweighted loss
        setattr(cfg, key, value)
    with tempfile.TemporaryDirectory() as out:
        probe: dict = {"spent": 0.0, "reached": None, "curve": []}
        trainer: Trainer | None = None

        def log(progress: dict) -> None:
            st = trainer.state
            trained = st.elapsed - probe["spent"]
            if st.step % probe_every == 0 or trained >= seconds:
                t0 = time.perf_counter()
                acc = _test_accuracy(trainer)
                probe["curve"].append((st.step, round(trained, 1), round(acc, 4)))
                if probe["reached"] is None and acc >= TARGET_ACCURACY:
                    probe["reached"] = (round(trained, 2), st.step)
                probe["spent"] += time.perf_counter() - t0
            if trained >= seconds:
                raise _Budget

        trainer = Trainer(cfg, Path(out) / "run")
        trainer._test = encode(trainer.corpus.split("test"), trainer.tokenizer, trainer.categories)
        try:
            trainer.fit(log=log)
        except _Budget:
            pass
        preds, labels, _ = classifier_predictions(trainer.model, trainer._test)
        report = classification_report(preds, labels, len(trainer.categories))
        trainer.model.train()
    m = cfg.model
    flags = (f"--corpus names --task classify --model {m.model} --embed {m.embed} --hidden {m.hidden} "
             f"--layers {m.layers} --dropout {m.dropout}{' --bidirectional' if m.bidirectional else ''} "
             f"--batch-size {cfg.batch_size} --lr {cfg.lr} --weight-decay {cfg.weight_decay} --epochs {cfg.epochs} "
             f"--warmup {cfg.warmup} "
             f"--class-weight-power {cfg.class_weight_power} --label-smoothing {cfg.label_smoothing}")
    return {"steps": trainer.state.step, "names_trained": trainer.state.step * cfg.batch_size,
            "wall_s": trainer.state.elapsed - probe["spent"],
            "accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
            "balanced_accuracy": report["balanced_accuracy"], "time_to_target": probe["reached"],
            "curve": probe["curve"], "recipe": flags}


def _test_accuracy(trainer) -> float:
    preds, labels, _ = classifier_predictions(trainer.model, trainer._test)
    trainer.model.train()
    return float((preds == labels).float().mean())


# ---------------------------------------------------------------------------------------------
# 4. Class-conditional character 4-gram


class NGram:
    """P(c | last n-1 chars, language) by interpolated absolute discounting: 4-gram → 3 → 2 → 1 of
    the language → the language-independent unigram → uniform over the alphabet (+ end mark)."""

    BOS, EOS = "\x02", "\x03"

    def __init__(self, train: list[Sample], order: int = 4, discount: float = 0.75) -> None:
        self.order, self.d = order, discount
        self.counts: dict[tuple, Counter] = defaultdict(Counter)  # (lang, context) -> next-char counts
        self.alphabet = {self.EOS} | {ch for s in train for ch in s.text}
        for s in train:
            seq = self.BOS * (order - 1) + s.text + self.EOS
            for i in range(order - 1, len(seq)):
                for k in range(order):  # context lengths 0 .. order-1
                    self.counts[s.category, seq[i - k : i]][seq[i]] += 1
                self.counts[None, ""][seq[i]] += 1
        self.totals = {key: (sum(c.values()), len(c)) for key, c in self.counts.items()}

    def prob(self, lang: str, context: str, ch: str) -> float:
        global_total, _ = self.totals[None, ""]
        p = (self.counts[None, ""][ch] + 1) / (global_total + len(self.alphabet) + 1)  # add-one, never zero
        for k in range(self.order):
            key = (lang, context[len(context) - k :] if k else "")
            if key not in self.totals:
                break
            total, types = self.totals[key]
            p = max(self.counts[key][ch] - self.d, 0) / total + self.d * types / total * p
        return p

    def nll(self, samples: list[Sample]) -> float:
        total, count = 0.0, 0
        for s in samples:
            seq = self.BOS * (self.order - 1) + s.text + self.EOS
            for i in range(self.order - 1, len(seq)):
                total -= math.log(self.prob(s.category, seq[i - self.order + 1 : i], seq[i]))
                count += 1
        return total / count


# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# 5. Classifiers side by side: the leak-free test split, calibration, and surnames the corpus lacks

OOS = Path(__file__).parent / "data" / "surnames-oos.tsv"


def read_oos(path: Path = OOS) -> list[tuple[str, str]]:
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip()]
    return [(name, language) for name, language in rows]


def classifier_figures(ck, data_dir: str, oos: list[tuple[str, str]]) -> dict:
    """Test-split accuracy / balanced accuracy / macro-F1, expected calibration error of the raw and
    of the calibrated probabilities, and accuracy on the out-of-sample surnames, per language too."""
    from poetgen.evaluate import classifier_logits, expected_calibration_error, split_samples
    from poetgen.names.classify import probabilities, temperature

    _, samples, _ = split_samples(ck, data_dir, "test")
    logits, labels = classifier_logits(ck.model, encode(samples, ck.tokenizer, ck.categories))
    test = classification_report(logits.argmax(-1), labels, len(ck.categories))
    known = [(n, lang) for n, lang in oos if lang in ck.categories]
    oos_labels = torch.tensor([ck.categories.index(lang) for _, lang in known])
    oos_report = classification_report(probabilities(ck, [n for n, _ in known]).argmax(-1), oos_labels,
                                       len(ck.categories))
    return {"test": test, "preds": logits.argmax(-1), "labels": labels,
            "ece_raw": expected_calibration_error(logits.softmax(-1), labels),
            "ece": expected_calibration_error((logits / temperature(ck)).softmax(-1), labels),
            "temperature": temperature(ck), "oos": oos_report, "oos_names": len(known)}


def bootstrap(preds: Tensor, base: Tensor | None, labels: Tensor, classes: int, rounds: int = 1000,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """2.5th and 97.5th percentiles of (metric of ``preds`` − metric of ``base``) over resamples of
    the test pairs, or of the metric itself without ``base``: with 6–11 test names in five
    languages, one name moves balanced accuracy by ~0.006, so a difference smaller than this
    interval is noise. ``meets`` is the share of resamples where ``preds`` meets both targets."""
    g = torch.Generator().manual_seed(seed)
    diffs: dict[str, list[float]] = {"accuracy": [], "balanced_accuracy": [], "macro_f1": []}
    meets = 0
    for _ in range(rounds):
        idx = torch.randint(len(labels), (len(labels),), generator=g)
        new = classification_report(preds[idx], labels[idx], classes)
        old = classification_report(base[idx], labels[idx], classes) if base is not None else None
        meets += new["balanced_accuracy"] >= TARGET_BALANCED and new["macro_f1"] >= TARGET_MACRO_F1
        for key in diffs:
            diffs[key].append(new[key] - (old[key] if old else 0.0))
    out = {key: (float(torch.tensor(v).quantile(0.025)), float(torch.tensor(v).quantile(0.975)))
           for key, v in diffs.items()}
    return {**out, "meets": meets / rounds}


def print_classifiers(named: dict[str, dict], labels: list[str]) -> None:
    print("\n[5] classifiers side by side (test split; out-of-sample surnames, benchmarks/data/surnames-oos.tsv)")
    for name, f in named.items():
        t, o = f["test"], f["oos"]
        print(f"    {name}: test accuracy {t['accuracy']:.3f} balanced {t['balanced_accuracy']:.3f} macro-F1 "
              f"{t['macro_f1']:.3f} | ECE {f['ece_raw']:.3f} raw, {f['ece']:.3f} at T={f['temperature']:.2f} | "
              f"OOS ({f['oos_names']} names) accuracy {o['accuracy']:.3f} balanced {o['balanced_accuracy']:.3f}")
    first = next(iter(named.values()))
    for name, f in named.items():
        ci = bootstrap(f["preds"], None, f["labels"], len(labels))
        print(f"    {name}, test split, 95% bootstrap interval (1000 resamples of the pairs): " + ", ".join(
            f"{key} {ci[key][0]:.3f} … {ci[key][1]:.3f}" for key in ("balanced_accuracy", "macro_f1")) +
            f"; balanced ≥ {TARGET_BALANCED} and macro-F1 ≥ {TARGET_MACRO_F1} in {ci['meets']:.0%} of resamples")
    for name, f in list(named.items())[1:]:
        diff = bootstrap(f["preds"], first["preds"], f["labels"], len(labels))
        print(f"    {name} − {next(iter(named))}, test split, 95% bootstrap interval (1000 resamples of the "
              f"pairs, the same for both): " + ", ".join(
                  f"{key} {diff[key][0]:+.3f} … {diff[key][1]:+.3f}"
                  for key in ("accuracy", "balanced_accuracy", "macro_f1")))
    for part, title in (("oos", "out-of-sample"), ("test", "test split")):
        print(f"    {title} recall by language ({' / '.join(named)}): " + "  ".join(
            f"{lang} " + "/".join(f"{f[part]['recall'][i]:.2f}" for f in named.values())
            for i, lang in enumerate(labels)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("POETGEN_DATA"), help="folder holding names/*.txt")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall budget of each classifier")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads for both classifiers")
    parser.add_argument("--probe-every", type=int, default=25, help="steps between test-accuracy probes")
    parser.add_argument("--generator", help="names LM checkpoint (default: the shipped one)")
    parser.add_argument("--classifier", help="classifier checkpoint for agreement (default: the shipped one)")
    parser.add_argument("--samples", type=int, default=200, help="generated names per language")
    parser.add_argument("--temperature", type=float, default=NAME_TEMPERATURE)
    parser.add_argument("--seed", type=int, default=0)
    # poetgen classifier settings other than the preset's (the LR schedule spans --epochs)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--class-weight-power", type=float)
    parser.add_argument("--skip-training", action="store_true", help="only the generator and the 4-gram")
    parser.add_argument("--skip-generator", action="store_true", help="only the two classifiers")
    parser.add_argument("--baseline-classifier", help="classifier to compare --classifier with in [5] "
                        "(default: none, [5] shows --classifier alone)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    corpus = load_corpus("names", args.data_dir)
    train, test = corpus.split("train"), corpus.split("test")
    print(f"names corpus {corpus.fingerprint}: {len(train)} train / {len(test)} test distinct (name, language); "
          f"threads={args.threads}, load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    if not args.skip_training:
        tut = run_tutorial(train, test, corpus.categories, args.seconds, args.seed)
        print(f"\n[1] tutorial RNN, {tut['steps']} names in {tut['wall_s']:.1f}s: {tut['net']}")
        print(f"    test accuracy {tut['accuracy']:.4f}  macro-F1 {tut['macro_f1']:.4f}  "
              f"balanced {tut['balanced_accuracy']:.4f}  (mean loss of the last 1000 steps {tut['loss_last_1000']:.3f};"
              f" {tut['unreadable_test_names']} test names empty after the ASCII fold)")
        overrides = {k: v for k in ("epochs", "batch_size", "lr", "warmup", "class_weight_power")
                     if (v := getattr(args, k)) is not None}
        pg = run_poetgen(args.data_dir, args.seconds, args.threads, args.probe_every, args.seed, overrides)
        reached = pg["time_to_target"]
        which = f"the train preset with {overrides}" if overrides else "the train preset"
        print(f"\n[2] poetgen classifier ({which}), {pg['steps']} steps in {pg['wall_s']:.1f}s: "
              f"{pg['recipe']}")
        print(f"    test accuracy {pg['accuracy']:.4f}  macro-F1 {pg['macro_f1']:.4f}  "
              f"balanced {pg['balanced_accuracy']:.4f}")
        print("    time to test accuracy {:.2f}: {}".format(
            TARGET_ACCURACY, f"{reached[0]:.1f}s (step {reached[1]})" if reached else "not reached in the budget"))
        shown = pg["curve"][:: max(1, len(pg["curve"]) // 12)]
        print("    probes (step/s/acc):", " ".join(f"{s}/{t}/{a}" for s, t, a in shown))
        print(f"    ratios poetgen/tutorial: accuracy ×{pg['accuracy'] / max(tut['accuracy'], 1e-9):.2f}, "
              f"macro-F1 ×{pg['macro_f1'] / max(tut['macro_f1'], 1e-9):.2f}, names/s "
              f"×{pg['names_trained'] / pg['wall_s'] / (tut['steps'] / tut['wall_s']):.1f}")

    cls = load_for("classify", args.classifier or bundled_checkpoint("classify"))
    named = {"baseline": load_for("classify", args.baseline_classifier)} if args.baseline_classifier else {}
    named[cls.path.name if not named else "candidate"] = cls
    torch.set_num_threads(args.threads)
    oos = read_oos()
    print_classifiers({k: classifier_figures(ck, args.data_dir, oos) for k, ck in named.items()}, cls.categories)
    if args.skip_generator:
        return 0
    ngram = NGram(train)
    ngram_nll = ngram.nll(test)
    gen = load_for("names", args.generator or bundled_checkpoint("names"))
    torch.set_num_threads(args.threads)  # load_for picks its own default
    t0 = time.perf_counter()
    ev = evaluate_generator(gen, cls, args.data_dir, samples_per_language=args.samples,
                            sampling=Sampling(temperature=args.temperature, seed=args.seed))
    print(f"\n[3] generator {gen.path.name} ({gen.path.stat().st_size / 1e6:.1f} MB), "
          f"{ev['samples']} names at temperature {ev['temperature']} in {time.perf_counter() - t0:.1f}s")
    print(f"    test NLL {ev['nll_per_char']:.4f} nats/char (perplexity {ev['perplexity']:.2f}), "
          f"agreement {ev['agreement']:.3f}, novelty {ev['novelty']:.3f}, uniqueness {ev['uniqueness']:.3f}")
    worst = sorted(ev["agreement_by_language"].items(), key=lambda kv: kv[1])[:4]
    print("    lowest agreement:", ", ".join(f"{k} {v:.2f}" for k, v in worst))
    print(f"\n[4] class-conditional 4-gram: test NLL {ngram_nll:.4f} nats/char")
    print(f"    ratio 4-gram/LSTM NLL ×{ngram_nll / ev['nll_per_char']:.3f} "
          f"(perplexity {math.exp(ngram_nll):.2f} vs {ev['perplexity']:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
