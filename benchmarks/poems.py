"""Poem quality and speed of a trained model, against real poems and a bigram, in one table.

How to run (from the repository root, with the corpora at ../shared/corpora)::

    python benchmarks/poems.py --data-dir ../shared/corpora                      # the shipped model
    python benchmarks/poems.py --data-dir ../shared/corpora --checkpoint runs/tang --samples 50

For each form (五绝 七绝 五律 七律) and each kind of prompt (a two-character prefix such as 青山,
or acrostic heads such as 春夏秋冬), ``--samples`` poems are written with ``poetgen.poems.write_poems``
(temperature ``--temp``, one batch per prompt, four prompts) and checked by ``poetgen.prosody``:

* form %: the poem has the form's shape and punctuation (constrained decoding: should be 100);
* rhyme %: even lines share a level-tone (平) group under 平水韵, beside the rate of the real
  poems of that form in the test split under the same checker;
* tone %: 二四六分明 and 对/粘 (not constrained: the model's own skill), beside the real rate;
* copied %: generated lines identical to a training line (re-drawn, so near 0), beside the share
  of real test-split lines that also occur in the training split (stock lines);
* distinct-2: distinct character bigrams within lines / all of them, generated vs real;
* 3×char / 2×phrase: % of poems with a character three times or more / a two-character phrase
  twice (what repetition control rules out unless ``--allow-repeats``), generated vs real;
* poems/s: warm generation speed (after a warm-up call; masks cached), checker included.

Themes (``--theme-sets`` random keyword sets, 25% per form by default 100 in all): 1–3 keywords
of one or two characters cut from training-split lines; the share of poems holding every keyword,
and the form / rhyme / 平仄 rates of those poems.

Fluency (``--fluency-samples`` poems per form, default 200, written from scratch at the default
settings): a judge independent of the model, ``poetgen.poems.fluency.FluencyJudge`` (an
interpolated Kneser–Ney character trigram fitted here on the Tang 古体 poems, which the poem model
never trains on), gives its perplexity per character of the generated poems and of the real
test-split poems of the form; beside it distinct-2, copied lines and poems/s, for each
``--candidates`` value given (default 1 and the library's default), in the same run.

Styles (a model conditioned on poets): for each listed poet, the model's perplexity on that poet's
test-split poems conditioned on the poet and conditioned on "any".

Then the held-out perplexity per token (``<eos>`` included) of the model on the test split, and of
an interpolated character bigram fitted on the training split (λ tuned on the validation split),
over the same tokens, in the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import time
from dataclasses import replace

import torch

from poetgen.checkpoint import load_for
from poetgen.corpora import load_corpus
from poetgen.defaults import POEM_CANDIDATES, POEM_TEMPERATURE
from poetgen.poems.evaluate import (
    bigram_perplexity,
    evaluate_poems,
    evaluation_corpus,
    heldout_perplexity,
    poem_stats,
)
from poetgen.poems.fluency import FluencyJudge
from poetgen.poems.plan import model_script
from poetgen.poems.write import write_poems
from poetgen.sample import Sampling
from poetgen.verse import FORMS, OTHER


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="checkpoint file or run folder (default: the shipped model)")
    parser.add_argument("--data-dir", default=None, help="folder holding chinese-poetry/quantangshi/*.json")
    parser.add_argument("--samples", type=int, default=200, help="poems per form and prompt kind")
    parser.add_argument("--temp", type=float, default=POEM_TEMPERATURE)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scheme", default="pingshui", choices=["pingshui", "xinyun"])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: what poetgen write uses, 1)")
    parser.add_argument("--forms", nargs="*", default=list(FORMS))
    parser.add_argument("--theme-sets", type=int, default=100, help="random theme keyword sets (0: skip)")
    parser.add_argument("--fluency-samples", type=int, default=200, help="poems per form for the judge (0: skip)")
    parser.add_argument("--candidates", type=int, nargs="*", default=None,
                        help="candidates per poem to compare under the judge (default: 1 and the library's default)")
    parser.add_argument("--skip-table", action="store_true", help="skip the prefix/acrostic table")
    args = parser.parse_args()
    if args.threads:  # load_for sets the thread count from POETGEN_THREADS (1 for poems by default)
        os.environ["POETGEN_THREADS"] = str(args.threads)

    ck = load_for("poems", args.checkpoint)
    corpus = evaluation_corpus(ck, args.data_dir)
    test = corpus.split("test")
    real = {form: [s.text for s in test if s.category == form] for form in args.forms}
    sampling = Sampling(temperature=args.temp, seed=args.seed)

    header = (f"{'form':<6} {'prompt':<8} {'form %':>6} {'rhyme % (real)':>15} {'tone % (real)':>14} "
              f"{'copied % (real)':>16} {'distinct-2 (real)':>18} {'3×char % (real)':>16} {'2×phrase % (real)':>18} "
              f"{'poems/s':>8}")
    print(f"checkpoint {ck.path}  ({sum(p.numel() for p in ck.model.parameters()) / 1e6:.1f}M parameters, "
          f"vocabulary {len(ck.tokenizer)}, torch threads {torch.get_num_threads()})")
    print(f"{args.samples} poems per row, temperature {args.temp}, seed {args.seed}, {args.scheme}; "
          f"real poems: test split ({', '.join(f'{f} {len(real[f])}' for f in args.forms)})")
    if not ck.seen:
        print("warning: the checkpoint holds no hashes of its training lines: copies are neither avoided nor counted")
    print()
    print(header)
    print("-" * len(header))
    for prompts in () if args.skip_table else ("prefix", "acrostic"):
        result = evaluate_poems(ck, samples=args.samples, forms=args.forms, prompts=prompts, seed=args.seed,
                                real_texts=real, sampling=sampling, rhyme_scheme=args.scheme)
        for form in args.forms:
            r = result[form]
            label = form + " " * (6 - 2 * len(form))  # CJK characters are two columns wide
            print(f"{label} {prompts:<8} {pct(r['form_valid']):>6} {pair(r, 'rhyme'):>15} {pair(r, 'tone'):>14} "
                  f"{pair(r, 'copied_lines'):>16} {pair(r, 'distinct2', percent=False):>18} "
                  f"{pair(r, 'char_thrice'):>16} {pair(r, 'phrase_twice'):>18} {r['poems_per_s']:>8.1f}")
    if args.theme_sets:
        print()
        themes(ck, corpus.split("train"), args.forms, args.theme_sets, sampling)
    if args.fluency_samples:
        print()
        ks = args.candidates or sorted({1, POEM_CANDIDATES})
        fluency(ck, args.data_dir, real, args.forms, args.fluency_samples, ks, args.seed)
    if ck.styles:
        print()
        styles(ck, test)
    print()
    start = time.perf_counter()
    model_ppl = heldout_perplexity(ck, test)
    bigram_ppl = bigram_perplexity(ck, corpus.split("train"), test, corpus.split("val"))
    print(f"held-out perplexity on the test split ({len(test)} poems): model {model_ppl:.1f}, "
          f"interpolated character bigram {bigram_ppl:.1f} (model / bigram = {model_ppl / bigram_ppl:.2f}; "
          f"{time.perf_counter() - start:.1f}s)")


def fluency(ck, data_dir, real: dict[str, list[str]], forms: list[str], samples: int, ks: list[int],
            seed: int) -> None:
    """The judge's perplexity of generated poems (each K in ``ks``) against real ones, per form."""
    start = time.perf_counter()
    other = load_corpus("tang", data_dir, script=model_script(ck) or "simplified", forms=[OTHER])
    judge = FluencyJudge(s.text for s in other.samples)
    print(f"fluency judge: character trigram (interpolated Kneser-Ney) on {len(other.samples):,} Tang 古体 poems "
          f"(no poem model trains on them), fitted in {time.perf_counter() - start:.1f}s; {samples} poems per form "
          f"from scratch at the default settings; judge perplexity per character (lower = more fluent); "
          f"distinct-2 over as many generated poems as there are real ones (at most {samples})")
    cols = "".join(f" {'K=' + str(k) + ' ppl':>9} {'dist-2':>6} {'copied%':>7} {'poems/s':>7}" for k in ks)
    print(f"{'form':<6} {'real ppl':>8} {'real dist-2':>11}{cols}")
    for form in forms:
        cells = []
        for k in ks:
            poems, elapsed = [], 0.0
            write_poems(ck, form=form, n=2, candidates=k, sampling=Sampling(seed=seed))  # warm-up
            for first in range(0, samples, CHUNK):
                n = min(CHUNK, samples - first)
                t0 = time.perf_counter()
                poems += write_poems(ck, form=form, n=n, candidates=k, sampling=Sampling(seed=seed + first))
                elapsed += time.perf_counter() - t0
            texts = [p.text for p in poems][:len(real[form])]  # distinct-2 falls with the count: equal counts
            stats = poem_stats(texts, form, ck=ck)
            cells.append(f" {judge.perplexity(texts):>9.1f} {stats['distinct2']:>6.3f} "
                         f"{pct(stats['copied_lines']):>7} {len(poems) / elapsed:>7.1f}")
        label = form + " " * (6 - 2 * len(form))
        shown = real[form][:samples]
        real_stats = poem_stats(shown, form)
        print(f"{label} {judge.perplexity(shown):>8.1f} {real_stats['distinct2']:>11.3f}{''.join(cells)}")


def styles(ck, test) -> None:
    """Per listed poet: perplexity of the poet's test-split poems under the poet vs under any."""
    print("styles: perplexity of each listed poet's test-split poems, conditioned on the poet / on any")
    print(f"{'poet':<8} {'test poems':>10} {'poet ppl':>9} {'any ppl':>8} {'ratio':>6}")
    better = 0
    for name, _ in ck.styles[1:]:
        poems = [s for s in test if s.author == name]
        if not poems:
            print(f"{name:<8} {0:>10}")
            continue
        own, anyone = heldout_perplexity(ck, poems, style=name), heldout_perplexity(ck, poems)
        better += own < anyone
        label = name + " " * max(0, 8 - 2 * len(name))
        print(f"{label} {len(poems):>10} {own:>9.1f} {anyone:>8.1f} {own / anyone:>6.3f}")
    print(f"lower under the poet for {better} of {len(ck.styles) - 1} poets; the whole test split, each poem "
          f"under its poet when listed (else any): {own_poet_perplexity(ck, test):.1f}")


def own_poet_perplexity(ck, samples) -> float:
    """Perplexity per token with each poem conditioned on its own poet where the model lists them."""
    from poetgen.data import encode
    from poetgen.evaluate import lm_nll

    index = {name: i for i, name in enumerate(ck.style_names)}
    examples = [replace(e, style=index.get(s.author, 0))
                for s in samples for e in encode([s], ck.tokenizer, ck.categories)]
    return math.exp(lm_nll(ck.model, examples)[0])


CHUNK = 100  # poems per write_poems call in the fluency rows (n × candidates stays within MAX_POEMS)


def themes(ck, train, forms: list[str], sets: int, sampling: Sampling) -> None:
    """Poems written with random theme keywords: every keyword present, form / rhyme / tone kept."""
    rng = random.Random(0)
    lines = [line for s in train for line in re.split("[，。？！；]", s.text) if len(line) >= 2]
    present = valid = rhymed = toned = 0
    start = time.perf_counter()
    for i in range(sets):
        form, words, count = forms[i % len(forms)], [], rng.randint(1, 3)
        while len(words) < count:
            line = rng.choice(lines)
            size = rng.choice((1, 2))
            at = rng.randrange(len(line) - size + 1)
            word = line[at:at + size]
            if len(set(word)) == size and not set(word) & set("".join(words)):
                words.append(word)
        poem = write_poems(ck, form=form, theme=words, sampling=replace(sampling, seed=i))[0]
        rules = poem.check["rules"]
        present += all(w in poem.text for w in words)
        valid += rules["form"] and rules["punctuation"] and poem.form == form
        rhymed += rules["level_rhyme"]
        toned += rules["tone_pattern"]
    print(f"themes: {sets} random keyword sets (1-3 keywords of 1-2 characters) over {', '.join(forms)}: "
          f"all keywords present {pct(present / sets)}%, form {pct(valid / sets)}%, rhyme {pct(rhymed / sets)}%, "
          f"tone {pct(toned / sets)}% ({time.perf_counter() - start:.1f}s)")


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def pair(row: dict, key: str, percent: bool = True) -> str:
    fmt = pct if percent else (lambda x: "-" if x is None else f"{x:.3f}")
    return f"{fmt(row.get(key))} ({fmt(row.get(key + '_real'))})"


if __name__ == "__main__":
    main()
