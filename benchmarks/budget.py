"""Same wall-clock budget, held-out perplexity: the textbook poetry recipe vs poetgen's Tang preset.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/budget.py --data-dir ../shared/corpora                  # 600 s each, 2 threads
    python benchmarks/budget.py --data-dir ../shared/corpora --seconds 5      # smoke test
    python benchmarks/budget.py --data-dir ../shared/corpora --out runs/budget  # keep poetgen's run

Both train for ``--seconds`` of wall clock on the train split of the project's Tang regulated-form
corpus (simplified script, 五绝 七绝 五律 七律), with ``--threads`` CPU threads, one after the other:

(a) the textbook recipe exactly as in ``throughput.py`` (left-padded to 125, full softmax, batch 128,
    Adam 1e-3, CrossEntropy over every position including padding), epoch after shuffled epoch;
(b) poetgen's default Tang preset, ``train.preset("tang", "lm")`` with ``max_time=seconds``, through
    ``Trainer.fit``; its budget includes its own periodic validation and checkpoint writes (the
    final validation runs after it), and the model scored is its ``best.safetensors`` (chosen on
    the validation split, as ``poetgen train`` leaves it).

Both check the clock between steps, so each may overrun the budget by up to one step (the printed
wall times say by how much).

Then all are scored on the held-out TEST split with one definition (``poetgen.score``): NLL per
character of the poem text, punctuation included, ``<eos>``/``<EOP>`` not scored, characters
outside the (shared) training vocabulary read as ``<unk>`` but not scored. The textbook model is
fed exactly as it was trained: ``<START> poem <EOP>`` left-padded to 125, scoring the predictions
of the poem's characters. A character bigram interpolated with an add-one unigram
(``λ p(c|prev) + (1-λ) p(c)``; fit on train, λ tuned on val) is scored on the same characters.
poetgen is conditioned on the form detected from each poem's shape (its normal use); the line
"poetgen, form not given" scores it under the equal mixture of the four forms instead, which uses
no side information at all.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import MAXLEN, TextbookTrainer, textbook_batches, textbook_data, textbook_sequence

from poetgen.checkpoint import load_checkpoint
from poetgen.config import preset
from poetgen.data import load_training_corpus
from poetgen.devices import pick_device
from poetgen.score import MIXTURE, score_lines, summarize
from poetgen.train import Trainer
from poetgen.training_data import build_vocab
from poetgen.vocab import BOS, EOS, UNK, Tokenizer

# ---------------------------------------------------------------------------------------------
# (a) textbook: training for a budget and scoring


def train_textbook(texts: list[str], tok: Tokenizer, device: torch.device, seconds: float, seed: int):
    torch.manual_seed(seed)
    trainer = TextbookTrainer(len(tok), device)
    batches = textbook_batches(textbook_data(texts, tok), 128, torch.Generator().manual_seed(seed))
    steps, useful, loss = 0, 0, math.nan
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        loss, n = trainer.step(next(batches))
        steps, useful = steps + 1, useful + n
    return trainer.model, {"steps": steps, "useful_chars": useful, "wall_s": time.perf_counter() - start,
                           "train_loss": loss}


@torch.no_grad()
def score_textbook(model, texts: list[str], tok: Tokenizer, device: torch.device, batch_size: int = 128) -> dict:
    """Per-char NLL of the poem characters, fed as in training (left-padded, time-major)."""
    model.eval()
    nll, chars, oov = 0.0, 0, 0
    for i in range(0, len(texts), batch_size):
        seqs, scored = [], []
        for text in texts[i : i + batch_size]:
            ids = tok.encode(text)
            if len(ids) + 2 > MAXLEN:
                raise SystemExit(f"a test poem has {len(ids)} characters: longer than the recipe's {MAXLEN - 2}")
            seq = textbook_sequence(ids)
            # Target j (predicted from input j) is seq[j + 1]; the poem's characters sit at
            # seq[start + 1 .. start + n] with <START> at seq[start]; <EOP> is the last position.
            start = MAXLEN - len(ids) - 2
            mask = [False] * (MAXLEN - 1)
            for k, t in enumerate(ids):
                mask[start + k] = t != UNK
            seqs.append(seq)
            scored.append(mask)
            chars += sum(t != UNK for t in ids)
            oov += sum(t == UNK for t in ids)
        data_ = torch.tensor(seqs, dtype=torch.long, device=device).transpose(1, 0).contiguous()
        input_, target = data_[:-1, :], data_[1:, :]
        output, _ = model(input_)  # (seq_len * batch, vocab)
        mask = torch.tensor(scored, device=device).transpose(1, 0).reshape(-1)
        log_probs = torch.log_softmax(output[mask].float(), dim=-1)
        nll -= float(log_probs.gather(1, target.reshape(-1)[mask][:, None]).sum())
    return {"nll": nll, "chars": chars, "oov": oov}


# ---------------------------------------------------------------------------------------------
# (c) interpolated character bigram


class Bigram:
    """λ p_ML(c | prev) + (1-λ) p_addone(c); prev = <bos> at the start; unseen prev → unigram only.

    Events are the characters and <eos> (as for the networks), so the distributions are over the
    same outcomes; <eos> is fit but, like everywhere here, not scored.
    """

    def __init__(self, texts: list[str], tok: Tokenizer) -> None:
        self.pairs: dict[int, Counter[int]] = defaultdict(Counter)
        unigram: Counter[int] = Counter()
        for text in texts:
            seq = [BOS, *tok.encode(text), EOS]
            for prev, nxt in itertools.pairwise(seq):
                self.pairs[prev][nxt] += 1
                unigram[nxt] += 1
        self.totals = {prev: sum(c.values()) for prev, c in self.pairs.items()}
        outcomes = len(tok) - 3  # every token but <pad>, <bos>, <unk>
        n = sum(unigram.values())
        self.unigram = {t: (unigram[t] + 1) / (n + outcomes) for t in range(len(tok))}
        self.lam = 0.5

    def components(self, texts: list[str], tok: Tokenizer) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(p_ML, p_unigram) of every scored character, and the OOV count."""
        ml, uni, oov = [], [], 0
        for text in texts:
            ids = tok.encode(text)
            for prev, t in zip([BOS, *ids], ids, strict=False):
                if t == UNK:
                    oov += 1
                    continue
                total = self.totals.get(prev, 0)
                ml.append(self.pairs[prev][t] / total if total else math.nan)  # nan: unseen context
                uni.append(self.unigram[t])
        return torch.tensor(ml, dtype=torch.float64), torch.tensor(uni, dtype=torch.float64), oov

    @staticmethod
    def nll(ml: torch.Tensor, uni: torch.Tensor, lam: float) -> float:
        p = torch.where(torch.isnan(ml), uni, lam * torch.nan_to_num(ml) + (1 - lam) * uni)
        return float(-torch.log(p).sum())

    def tune(self, texts: list[str], tok: Tokenizer) -> float:
        ml, uni, _ = self.components(texts, tok)
        grid = [i / 100 for i in range(1, 100)]
        self.lam = min(grid, key=lambda lam: self.nll(ml, uni, lam))
        return self.lam

    def score(self, texts: list[str], tok: Tokenizer) -> dict:
        ml, uni, oov = self.components(texts, tok)
        return {"nll": self.nll(ml, uni, self.lam), "chars": len(ml), "oov": oov}


# ---------------------------------------------------------------------------------------------


def perplexity(result: dict) -> float:
    return math.exp(result["nll"] / result["chars"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("POETGEN_DATA", "../shared/corpora"))
    parser.add_argument("--seconds", type=float, default=600.0, help="training wall clock for each model")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for poetgen's run (default: a temporary one)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)

    cfg = preset("tang", "lm")
    cfg.data_dir, cfg.device, cfg.threads, cfg.max_time, cfg.seed = args.data_dir, args.device, args.threads, \
        args.seconds, args.seed
    cfg.eval_every = 300  # as in the figures of BENCHMARKS.md (the preset's own: 20 evaluations per run)
    corpus = load_training_corpus(cfg)  # Tang regulated forms, simplified: what both train on
    tok = build_vocab(cfg, corpus)  # poetgen's vocabulary (train split); the textbook uses the same
    train = [s.text for s in corpus.split("train")]
    val = [s.text for s in corpus.split("val")]
    test = [s.text for s in corpus.split("test")]
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, budget {args.seconds:g} s; "
          f"train/val/test poems {len(train)}/{len(val)}/{len(test)}, vocab {len(tok)}", flush=True)

    print("(a) training the textbook recipe ...", flush=True)
    textbook, facts_a = train_textbook(train, tok, device, args.seconds, args.seed)
    result_a = score_textbook(textbook, test, tok, device)
    del textbook

    print("(b) training poetgen's Tang preset ...", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "poetgen"
        start = time.perf_counter()
        record = Trainer(cfg, out).fit()
        facts_b = {"steps": record.get("step"), "wall_s": time.perf_counter() - start,
                   "budget_s": record.get("wall_s"), "val_loss": record.get("val_loss")}
        ck = load_checkpoint(out, device=device)
        result_b = summarize(score_lines(ck, test))
        result_b_mix = summarize(score_lines(ck, test, category=MIXTURE))

    bigram = Bigram(train, tok)
    lam = bigram.tune(val, tok)
    result_c = bigram.score(test, tok)

    for name, r in (("poetgen", result_b), ("poetgen mixture", result_b_mix), ("bigram", result_c)):
        if (r["chars"], r["oov"]) != (result_a["chars"], result_a["oov"]):
            raise SystemExit(f"{name} scored {r['chars']} chars / {r['oov']} OOV, textbook "
                             f"{result_a['chars']} / {result_a['oov']}: not the same text")

    ppl_a, ppl_b, ppl_mix, ppl_c = map(perplexity, (result_a, result_b, result_b_mix, result_c))
    print(f"\ntest split: {len(test)} poems, {result_a['chars']:,} characters scored, "
          f"{result_a['oov']} OOV (not scored), <eos> not scored")
    print(f"(a) textbook recipe          perplexity {ppl_a:8.2f}  ({facts_a['steps']} steps in "
          f"{facts_a['wall_s']:.0f} s, {facts_a['useful_chars']:,} useful chars, "
          f"last train loss {facts_a['train_loss']:.3f} incl. padding)")
    print(f"(b) poetgen Tang preset      perplexity {ppl_b:8.2f}  ({facts_b['steps']} steps in "
          f"{facts_b['budget_s']:.0f} s incl. periodic validation, {facts_b['wall_s']:.0f} s with the final one; "
          f"val loss {facts_b['val_loss']:.3f} incl. <eos>)")
    print(f"    poetgen, form not given  perplexity {ppl_mix:8.2f}  (equal mixture of the 4 forms)")
    print(f"(c) interpolated bigram      perplexity {ppl_c:8.2f}  (λ = {lam:.2f}, tuned on val)")
    print(f"ratio poetgen/textbook perplexity: {ppl_b / ppl_a:.3f} (form not given: {ppl_mix / ppl_a:.3f})")


if __name__ == "__main__":
    main()
