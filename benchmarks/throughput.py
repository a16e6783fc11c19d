"""Training throughput: the textbook poetry recipe vs poetgen at the same model size, in one run.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/throughput.py --data-dir ../shared/corpora         # 2 CPU threads, 5 rounds x 10 steps
    python benchmarks/throughput.py --data-dir ../shared/corpora --device cuda
    python benchmarks/throughput.py --data-dir ../shared/corpora --rounds 1 --steps 2 --names-steps 50  # smoke

Each recipe runs ``--warmup`` untimed steps, then ``--rounds`` rounds of ``--steps`` timed steps;
within a round the recipes take turns, so a slow spell on a shared machine slows all of them. The
script prints each round, the median useful chars/s per recipe, and the ratios of the medians with
the range of the per-round ratios. The recipes:

(a) textbook: the classic PyTorch Tang-poetry recipe re-implemented faithfully. Every poem becomes
    ``<START> poem <EOP>``, truncated at the end / LEFT-padded to 125 tokens (Keras
    ``pad_sequences(padding='pre', truncating='post')``); Embedding 128 → time-major LSTM 2×256 →
    Linear over the full vocabulary; batch 128; Adam 1e-3; ``CrossEntropyLoss`` over all 124
    positions, padding included.
(b) poetgen at the same size (embed 128, LSTM 2×256) with its Tang defaults otherwise: length-bucketed
    right-padded batches of 64, pad-masked loss, adaptive softmax, AdamW, clipping; driven through
    poetgen's own ``Trainer.train_step``.
(c) the names-classification tutorial RNN (``i2h``/``i2o`` Linear + LogSoftmax, hidden 128, one-hot
    ASCII letters, one name per step, manual SGD 0.005); one step = one name.
(d) as (b) with the hand-written LSTM (``--cell custom``), for the record.
(e) torch's ``nn.LSTM`` of (b) alone, forward + backward on the same batches as (b) (its input
    width, same lengths), with no embedding, output layer, loss or optimiser: the ceiling of any
    trainer built on this kernel at this size, since a language model cannot skip those.

Useful chars/s counts the non-padding targets that are text: the poem's characters plus its end
marker (``<EOP>`` / ``<eos>``), never padding and never ``<START>``, divided by wall seconds of
the timed steps (forward, backward, optimiser step, batch assembly). For (c), which predicts a
label, it is the letters read per second. Both poem recipes train on the train split of the
project's Tang regulated-form corpus (simplified) with the same character vocabulary.
"""

from __future__ import annotations

import argparse
import glob
import itertools
import math
import os
import statistics
import string
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from poetgen.config import preset
from poetgen.devices import pick_device
from poetgen.model import count_parameters
from poetgen.train import Trainer
from poetgen.training_data import build_vocab
from poetgen.vocab import BOS, EOS, PAD, Tokenizer

MAXLEN = 125  # the recipe's opt.maxlen

# ---------------------------------------------------------------------------------------------
# (a) The textbook recipe


class TextbookPoetryModel(nn.Module):
    """The recipe's PoetryModel: Embedding → LSTM(2 layers, time-major) → Linear(vocab)."""

    def __init__(self, vocab_size: int, embedding_dim: int = 128, hidden_dim: int = 256) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.embeddings = nn.Embedding(vocab_size, embedding_dim)
        self.lstm = nn.LSTM(embedding_dim, hidden_dim, num_layers=2)
        self.linear1 = nn.Linear(hidden_dim, vocab_size)

    def forward(self, input: Tensor, hidden=None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        seq_len, batch_size = input.size()
        if hidden is None:
            h_0 = input.new_zeros(2, batch_size, self.hidden_dim, dtype=torch.float)
            c_0 = input.new_zeros(2, batch_size, self.hidden_dim, dtype=torch.float)
        else:
            h_0, c_0 = hidden
        embeds = self.embeddings(input)  # (seq_len, batch, embedding)
        output, hidden = self.lstm(embeds, (h_0, c_0))
        output = self.linear1(output.view(seq_len * batch_size, -1))  # (seq_len * batch, vocab)
        return output, hidden


def textbook_sequence(ids: list[int], maxlen: int = MAXLEN) -> list[int]:
    """``<START> poem <EOP>``, truncated at the end ('post') and padded at the LEFT ('pre')."""
    seq = [BOS, *ids, EOS][:maxlen]
    return [PAD] * (maxlen - len(seq)) + seq


def textbook_data(texts: list[str], tok: Tokenizer, maxlen: int = MAXLEN) -> Tensor:
    """(N, maxlen) long tensor: the whole data set padded once, as the recipe stores it (tang.npz)."""
    return torch.tensor([textbook_sequence(tok.encode(t), maxlen) for t in texts], dtype=torch.long)


def useful_targets(target: Tensor) -> int:
    """Targets that are text (characters or the end marker): not padding, not <START>."""
    return int(((target != PAD) & (target != BOS)).sum())


class TextbookTrainer:
    """The recipe's training step: batch (B, 125) → transpose → input [:-1], target [1:], CE over all."""

    def __init__(self, vocab_size: int, device: torch.device, lr: float = 1e-3) -> None:
        self.device = device
        self.model = TextbookPoetryModel(vocab_size).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.criterion = nn.CrossEntropyLoss()

    def step(self, batch: Tensor) -> tuple[float, int]:
        data_ = batch.to(self.device).long().transpose(1, 0).contiguous()
        input_, target = data_[:-1, :], data_[1:, :]
        self.optimizer.zero_grad()
        output, _ = self.model(input_)
        loss = self.criterion(output, target.view(-1))
        loss.backward()
        self.optimizer.step()
        return loss.item(), useful_targets(target)


def textbook_batches(data: Tensor, batch_size: int, generator: torch.Generator):
    """DataLoader(shuffle=True) order, epoch after epoch."""
    while True:
        perm = torch.randperm(len(data), generator=generator)
        for i in range(0, len(data), batch_size):
            yield data[perm[i : i + batch_size]]


# ---------------------------------------------------------------------------------------------
# (c) The names-classification tutorial

ALL_LETTERS = string.ascii_letters + " .,;'"
N_LETTERS = len(ALL_LETTERS)


class RNN(nn.Module):
    """The tutorial's RNN: one step = cat(input, hidden) → i2h (new hidden), i2o → LogSoftmax."""

    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.i2h = nn.Linear(input_size + hidden_size, hidden_size)
        self.i2o = nn.Linear(input_size + hidden_size, output_size)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, input: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        combined = torch.cat((input, hidden), 1)
        hidden = self.i2h(combined)
        output = self.softmax(self.i2o(combined))
        return output, hidden

    def init_hidden(self, device: torch.device) -> Tensor:
        return torch.zeros(1, self.hidden_size, device=device)


def unicode_to_ascii(s: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", s)
                   if unicodedata.category(c) != "Mn" and c in ALL_LETTERS)


def line_to_tensor(line: str) -> Tensor:
    tensor = torch.zeros(len(line), 1, N_LETTERS)
    for i, letter in enumerate(line):
        tensor[i][0][ALL_LETTERS.find(letter)] = 1
    return tensor


def load_tutorial_names(data_dir: str) -> dict[str, list[str]]:
    lines = {}
    for path in sorted(glob.glob(os.path.join(data_dir, "names", "*.txt"))):
        with open(path, encoding="utf-8") as fh:
            names = [unicode_to_ascii(line.strip()) for line in fh]
        lines[os.path.splitext(os.path.basename(path))[0]] = [n for n in names if n]
    if not lines:
        sys.exit(f"no names/*.txt under {data_dir}")
    return lines


class TutorialNames:
    """randomTrainingExample + train() of the tutorial, one name per step."""

    def __init__(self, category_lines: dict[str, list[str]], device: torch.device, seed: int = 0) -> None:
        self.categories = list(category_lines)
        self.lines = category_lines
        self.device = device
        self.rnn = RNN(N_LETTERS, 128, len(self.categories)).to(device)
        self.criterion = nn.NLLLoss()
        self.lr = 0.005
        self.rng = torch.Generator().manual_seed(seed)

    def random_example(self) -> tuple[Tensor, Tensor, int]:
        c = int(torch.randint(len(self.categories), (1,), generator=self.rng))
        names = self.lines[self.categories[c]]
        line = names[int(torch.randint(len(names), (1,), generator=self.rng))]
        return torch.tensor([c], dtype=torch.long), line_to_tensor(line), len(line)

    def step(self) -> tuple[float, int]:
        category_tensor, line_tensor, n = self.random_example()
        category_tensor, line_tensor = category_tensor.to(self.device), line_tensor.to(self.device)
        hidden = self.rnn.init_hidden(self.device)
        self.rnn.zero_grad()
        for i in range(line_tensor.size(0)):
            output, hidden = self.rnn(line_tensor[i], hidden)
        loss = self.criterion(output, category_tensor)
        loss.backward()
        for p in self.rnn.parameters():
            p.data.add_(p.grad.data, alpha=-self.lr)
        return loss.item(), n


# ---------------------------------------------------------------------------------------------
# (b), (d) poetgen


def poetgen_trainer(data_dir: str, out: str, device: str, threads: int, cell: str = "torch",
                    embed: int = 128, hidden: int = 256, batch_size: int | None = None) -> Trainer:
    """poetgen's Tang preset at the given size (everything else as shipped)."""
    cfg = preset("tang", "lm")
    cfg.batch_size = batch_size or cfg.batch_size
    cfg.data_dir, cfg.device, cfg.threads = data_dir, device, threads
    cfg.model.embed, cfg.model.hidden, cfg.model.cell = embed, hidden, cell
    return Trainer(cfg, out)


def poetgen_batches(trainer: Trainer):
    from poetgen.data import batch_order

    epoch = 0
    while True:
        yield from batch_order([len(e.ids) for e in trainer.train_set], trainer.cfg.batch_size, trainer.cfg.seed, epoch)
        epoch += 1


def poetgen_step(trainer: Trainer, idx: list[int]) -> tuple[float, int]:
    step = trainer.train_step(idx)
    trainer.state.step += 1  # so the LR schedule advances as in Trainer.fit
    return step.objective, step.items


def kernel_step(trainer: Trainer, idx: list[int]) -> tuple[float, int]:
    """(e): the trainer's recurrent layer alone, forward + backward on a batch of the same shape."""
    rnn = trainer.model.rnn
    lengths = [len(trainer.train_set[i].ids) + 1 for i in idx]  # <bos> + text, as collate_lm builds it
    # The kernel's cost does not depend on the values: a constant fill keeps random-number
    # generation out of the ceiling's timing.
    x = torch.ones(len(idx), max(lengths), rnn.input_size, device=trainer.device, requires_grad=True)
    rnn.zero_grad(set_to_none=True)  # as (b) does: no accumulating onto (b)'s gradients
    out, _ = rnn(x)
    out.sum().backward()
    return math.nan, sum(lengths)  # no loss: there is no output layer


# ---------------------------------------------------------------------------------------------
# Timing: every recipe runs once per round, in turn, so slow spells of a shared machine hit all
# recipes alike; medians over rounds are reported, and each round's own ratios beside them.


@dataclass
class Recipe:
    key: str
    name: str
    params: int
    step: Callable[[], tuple[float, int]]  # one training step -> (loss, useful count)
    steps: int


@dataclass
class Result:
    seconds: float
    useful: int
    loss: float

    @property
    def rate(self) -> float:
        return self.useful / self.seconds if self.seconds else 0.0


def timed(recipe: Recipe, device: torch.device) -> Result:
    sync(device)
    useful, loss = 0, math.nan
    start = time.perf_counter()
    for _ in range(recipe.steps):
        loss, n = recipe.step()
        useful += n
    sync(device)
    return Result(time.perf_counter() - start, useful, loss)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_rounds(recipes: list[Recipe], rounds: int, warmup: int, device: torch.device) -> dict[str, list[Result]]:
    for recipe in recipes:
        for _ in range(warmup):
            recipe.step()
    results: dict[str, list[Result]] = {r.key: [] for r in recipes}
    for i in range(rounds):
        line = []
        for recipe in recipes:
            results[recipe.key].append(timed(recipe, device))
            line.append(f"({recipe.key}) {results[recipe.key][-1].rate:,.0f}")
        print(f"round {i + 1}: useful chars/s " + "  ".join(line), flush=True)
    return results


def median_rate(results: list[Result]) -> float:
    return statistics.median(r.rate for r in results)


def report(recipes: list[Recipe], results: dict[str, list[Result]]) -> None:
    print()
    for recipe in recipes:
        runs = results[recipe.key]
        rates = [r.rate for r in runs]
        ms = statistics.median(r.seconds / recipe.steps * 1000 for r in runs)
        loss = "-" if math.isnan(runs[-1].loss) else f"{runs[-1].loss:.3f}"
        print(f"({recipe.key}) {recipe.name}\n    params {recipe.params:,}  {recipe.steps} steps x {len(runs)} rounds  "
              f"median {ms:.1f} ms/step  useful chars/s median {statistics.median(rates):,.0f} "
              f"(min {min(rates):,.0f}, max {max(rates):,.0f})  last loss {loss}")
    print()
    ratios = (("b", "a", ""), ("e", "a", "  (the LSTM kernel alone)"), ("b", "e", "  (share of the kernel ceiling)"),
              ("d", "b", ""))
    for top, bottom, note in ratios:
        if top in results and bottom in results:
            per_round = [t.rate / b.rate for t, b in zip(results[top], results[bottom], strict=True)]
            ratio = median_rate(results[top]) / median_rate(results[bottom])
            print(f"ratio ({top})/({bottom}) useful chars/s: {ratio:.2f}x of medians; "
                  f"per round {min(per_round):.2f}-{max(per_round):.2f}x{note}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("POETGEN_DATA", "../shared/corpora"))
    parser.add_argument("--rounds", type=int, default=5, help="times each recipe is timed, in turn")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per recipe per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before the first round")
    parser.add_argument("--names-steps", type=int, default=1000, help="timed names per round for (c), one per step")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="poetgen's batch size for (b), (d), (e) (default: the preset's)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--skip", default="", help="letters of recipes to skip, e.g. 'cd'")
    parser.add_argument("--embed", type=int, default=128, help="poetgen's embedding size for (b), (d), (e)")
    parser.add_argument("--hidden", type=int, default=256, help="poetgen's LSTM size for (b), (d), (e) "
                        "(the shipped Tang model: --embed 256 --hidden 512)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    device = pick_device(args.device)
    print(f"torch {torch.__version__}, device {device}, {torch.get_num_threads()} threads, "
          f"{args.warmup} warm-up steps, then {args.rounds} rounds of {args.steps} timed steps per recipe")

    with tempfile.TemporaryDirectory() as tmp:
        size = {"embed": args.embed, "hidden": args.hidden, "batch_size": args.batch_size}
        trainer = poetgen_trainer(args.data_dir, os.path.join(tmp, "b"), args.device, args.threads, **size)
        # (b), (d) and (e) see the same batches in the same order, round for round.
        batches = list(itertools.islice(poetgen_batches(trainer), args.warmup + args.rounds * args.steps))
        recipes = []
        if "a" not in args.skip:
            tok = build_vocab(trainer.cfg, trainer.corpus)  # the same vocabulary as poetgen's
            data = textbook_data([s.text for s in trainer.corpus.split("train")], tok)
            textbook = TextbookTrainer(len(tok), device)
            stream = textbook_batches(data, 128, torch.Generator().manual_seed(0))
            recipes.append(Recipe("a", "textbook: left-pad 125, full softmax, batch 128",
                                  count_parameters(textbook.model), lambda: textbook.step(next(stream)), args.steps))
        if "b" not in args.skip:
            order_b = iter(batches)
            recipes.append(Recipe("b", f"poetgen: bucketed batch {trainer.cfg.batch_size}, adaptive softmax",
                                  count_parameters(trainer.model), lambda: poetgen_step(trainer, next(order_b)),
                                  args.steps))
        if "e" not in args.skip:
            order_e = iter(batches)
            recipes.append(Recipe("e", "(b)'s nn.LSTM alone, forward + backward", count_parameters(trainer.model.rnn),
                                  lambda: kernel_step(trainer, next(order_e)), args.steps))
        if "d" not in args.skip:
            custom = poetgen_trainer(args.data_dir, os.path.join(tmp, "d"), args.device, args.threads, cell="custom",
                                     **size)
            order_d = iter(batches)
            recipes.append(Recipe("d", "poetgen, hand-written LSTM (--cell custom)", count_parameters(custom.model),
                                  lambda: poetgen_step(custom, next(order_d)), args.steps))
        if "c" not in args.skip:
            names = TutorialNames(load_tutorial_names(args.data_dir), device)
            recipes.append(Recipe("c", "names tutorial RNN, one name per step (letters read)",
                                  count_parameters(names.rnn), names.step, args.names_steps))
        report(recipes, run_rounds(recipes, args.rounds, args.warmup, device))
        if device.type == "cuda":
            print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB (all recipes)")


if __name__ == "__main__":
    main()
