"""Names: language resolution, generation, classification and evaluation (poetgen.names).

A tiny corpus of made-up surnames with distinctive spellings (Russian -ov/-in, Japanese -moto/-mura,
Polish -ski/-czyk) trains a small classifier and a small language model once per module.
"""

from __future__ import annotations

import itertools
import math
import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import train_tiny

from poetgen.checkpoint import Checkpoint, bundled_checkpoint, load_checkpoint
from poetgen.config import TrainConfig, preset
from poetgen.data import Example, collate_lm, encode, pad
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.names.classify import classify
from poetgen.names.evaluate import evaluate_classifier, evaluate_generator
from poetgen.names.generate import generate_all, generate_names
from poetgen.names.languages import canonical_case, resolve_language
from poetgen.sample import Sampling
from poetgen.train import Trainer

LANGUAGES = ["Arabic", "Chinese", "Czech", "Dutch", "English", "French", "German", "Greek", "Irish", "Italian",
             "Japanese", "Korean", "Polish", "Portuguese", "Russian", "Scottish", "Spanish", "Vietnamese"]

STEMS = {
    "Russian": (["Iva", "Pet", "Smir", "Vol", "Sok", "Leb", "Koz", "Nov", "Mor", "Pav", "Sem", "Gol"],
                ["anov", "ov", "ev", "in", "ikov"]),
    "Japanese": (["Yama", "Taka", "Naka", "Kawa", "Mizu", "Suzu", "Wata", "Hashi", "Fuji", "Ishi"],
                 ["moto", "mura", "shita", "hara", "gawa"]),
    "Polish": (["Kowal", "Wisz", "Lewand", "Zielin", "Szyman", "Dabrow", "Kozlow", "Jank", "Kwiat"],
               ["ski", "czyk", "owski", "ewicz"]),
}


def tiny_names(per_language: int = 30) -> dict[str, list[str]]:
    rng = random.Random(0)
    out = {}
    for lang, (stems, ends) in STEMS.items():
        names = sorted({s + e for s, e in itertools.product(stems, ends)})
        rng.shuffle(names)
        out[lang] = names[:per_language]
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("names-data")
    (root / "names").mkdir()
    for lang, names in tiny_names().items():
        (root / "names" / f"{lang}.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def _train(data_dir: Path, out: Path, task: str, model: dict, steps: int) -> Checkpoint:
    # the classifier with the shipped classifier's loss: class weights and label smoothing
    loss = {"class_weight_power": 0.3, "label_smoothing": 0.1} if task == "classify" else {}
    train_tiny(data_dir, out, "names", task, model=model, max_steps=steps, epochs=1000, batch_size=16, warmup=10,
               eval_every=steps, **loss)
    return load_checkpoint(out / "last.safetensors")


@pytest.fixture(scope="module")
def cls_ck(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    model = {"model": "gru", "embed": 16, "hidden": 32, "dropout": 0.0, "bidirectional": True}
    return _train(data_dir, tmp_path_factory.mktemp("cls"), "classify", model, 150)


@pytest.fixture(scope="module")
def gen_ck(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    model = {"model": "lstm", "embed": 16, "hidden": 64, "dropout": 0.0, "category_embed": 8}
    return _train(data_dir, tmp_path_factory.mktemp("gen"), "lm", model, 250)


# ---------------------------------------------------------------------------------------------
# Language names


@pytest.fixture
def all_languages() -> SimpleNamespace:
    return SimpleNamespace(categories=LANGUAGES, path=Path("x.safetensors"))


@pytest.mark.parametrize(("text", "expected"), [
    ("Russian", "Russian"), ("russian", "Russian"), ("RUS", "Russian"), ("rus", "Russian"), (" jap ", "Japanese"),
    ("v", "Vietnamese"), ("Sc", "Scottish"), ("sp", "Spanish"),
])
def test_language_by_case_insensitive_unique_prefix(all_languages, text: str, expected: str) -> None:
    assert resolve_language(all_languages, text) == expected


def test_unknown_language_lists_all_and_suggests_the_closest(all_languages) -> None:
    with pytest.raises(PoetgenError) as e:
        resolve_language(all_languages, "Russain")
    message = str(e.value)
    assert "did you mean 'Russian'" in message
    assert all(lang in message for lang in LANGUAGES)


@pytest.mark.parametrize(("text", "candidates"), [("p", ["Polish", "Portuguese"]), ("ir", ["Irish"]),
                                                   ("i", ["Irish", "Italian"]), ("c", ["Chinese", "Czech"])])
def test_ambiguous_prefix_names_the_candidates(all_languages, text: str, candidates: list[str]) -> None:
    if len(candidates) == 1:
        assert resolve_language(all_languages, text) == candidates[0]
        return
    with pytest.raises(PoetgenError, match="ambiguous") as e:
        resolve_language(all_languages, text)
    assert all(c in str(e.value) for c in candidates)


def test_capitalisation_follows_the_data() -> None:
    assert canonical_case("hou") == "Hou"
    assert canonical_case("DOVESKY") == "Dovesky"
    assert canonical_case("o'brien") == "O'Brien"
    assert canonical_case("bestuzhev-ryumin") == "Bestuzhev-Ryumin"
    assert canonical_case("McDonald") == "McDonald"  # mixed case is taken as typed


# ---------------------------------------------------------------------------------------------
# Generation


def test_generation_count_distinct_and_in_the_alphabet(gen_ck: Checkpoint) -> None:
    names = generate_names(gen_ck, "russian", 12, sampling=Sampling(temperature=1.0, seed=1))
    assert len(names) == 12
    assert len(set(names)) == 12
    vocab = set(gen_ck.tokenizer.tokens)
    assert all(name and all(ch in vocab for ch in name) and len(name) <= 20 for name in names)


def test_same_seed_same_names_and_other_seed_other_names(gen_ck: Checkpoint) -> None:
    first = generate_names(gen_ck, "Japanese", 8, sampling=Sampling(temperature=1.0, seed=7))
    again = generate_names(gen_ck, "Japanese", 8, sampling=Sampling(temperature=1.0, seed=7))
    other = generate_names(gen_ck, "Japanese", 8, sampling=Sampling(temperature=1.0, seed=8))
    assert first == again
    assert first != other


def test_start_forces_the_first_letters_in_the_data_case(gen_ck: Checkpoint) -> None:
    names = generate_names(gen_ck, "Polish", 6, start="kow", sampling=Sampling(temperature=1.0, seed=3))
    assert names and all(name.startswith("Kow") for name in names)


def test_start_with_letters_outside_the_vocabulary_is_an_error(gen_ck: Checkpoint) -> None:
    with pytest.raises(PoetgenError, match="Ж"):
        generate_names(gen_ck, "Russian", 3, start="Жu")


@pytest.mark.parametrize("n", [0, -1, 1001])
def test_count_out_of_range_is_an_error(gen_ck: Checkpoint, n: int) -> None:
    with pytest.raises(PoetgenError, match="between 1 and 1000"):
        generate_names(gen_ck, "Russian", n)


def test_novel_names_are_never_training_names(gen_ck: Checkpoint, data_dir: Path) -> None:
    sampling = Sampling(temperature=0.7, seed=0)
    plain = generate_names(gen_ck, "Russian", 30, sampling=sampling)
    novel = generate_names(gen_ck, "Russian", 30, sampling=sampling, novel=True)
    assert any(gen_ck.has_seen(n) for n in plain)  # the tiny model copies: the test can fail
    assert novel and not any(gen_ck.has_seen(n) for n in novel)


@pytest.mark.parametrize(("guidance", "rerank"), [(0.0, 0.0), (1.0, 0.0), (0.0, 4.0), (5.0, 8.0)])
def test_guidance_levels_all_sample_valid_names(gen_ck: Checkpoint, guidance: float, rerank: float) -> None:
    kwargs = {"sampling": Sampling(seed=2), "guidance": guidance, "rerank": rerank}
    names = generate_names(gen_ck, "Polish", 5, **kwargs)
    assert len(names) == 5 and all(names) and len(set(names)) == 5
    assert names == generate_names(gen_ck, "Polish", 5, **kwargs)


@pytest.mark.parametrize("start", ["", "Ko"])
def test_guided_sampling_scores_names_for_the_reranker(gen_ck: Checkpoint, start: str) -> None:
    # The reranker reuses what guidance computed: log P(name <eos> | L) must be what a separate
    # scoring pass over the finished names gives, for every language still in play; a language
    # ruled out on the way (-inf) is one the name's posterior has all but excluded.
    from poetgen.names.generate import _language_loglik, _sample_raw, _start_ids

    _, start_ids = _start_ids(gen_ck, start, 20)
    g = torch.Generator().manual_seed(3)
    names, loglik = _sample_raw(gen_ck, [0, 1, 2] * 8, start_ids, 20, Sampling(temperature=1.0), g, 3.0)
    kept = [i for i, name in enumerate(names) if name]
    assert len(kept) >= 12 and all(names[i].startswith(start) for i in kept)
    exact, got = _language_loglik(gen_ck, [names[i] for i in kept]), loglik[kept]
    scored = torch.isfinite(got)
    assert scored[torch.arange(len(kept)), torch.tensor([0, 1, 2] * 8)[kept]].all()  # the asked one
    assert torch.allclose(got[scored], exact[scored], atol=1e-4)
    assert (exact.log_softmax(-1).exp()[~scored] < 0.01).all()


@pytest.mark.parametrize("knob", ["guidance", "rerank"])
@pytest.mark.parametrize("value", [-1.0, float("nan"), 21.0])
def test_bad_guidance_is_an_error(gen_ck: Checkpoint, knob: str, value: float) -> None:
    with pytest.raises(PoetgenError, match=knob):
        generate_names(gen_ck, "Polish", 3, **{knob: value})


def test_start_with_guidance_keeps_the_prefix(gen_ck: Checkpoint) -> None:
    names = generate_names(gen_ck, "Japanese", 4, start="Ya", sampling=Sampling(seed=4), guidance=2.0)
    assert names and all(n.startswith("Ya") for n in names)


def test_fewer_distinct_names_than_asked_returns_what_exists(gen_ck: Checkpoint) -> None:
    greedy = generate_names(gen_ck, "Japanese", 5, sampling=Sampling(temperature=0.0))
    assert len(greedy) == 1


def test_generate_all_gives_every_language(gen_ck: Checkpoint) -> None:
    table = generate_all(gen_ck, 2, sampling=Sampling(seed=0))
    assert list(table) == gen_ck.categories
    assert all(len(names) == 2 for names in table.values())


def test_classifier_checkpoint_cannot_generate(cls_ck: Checkpoint) -> None:
    with pytest.raises(PoetgenError, match="not a names language model"):
        generate_names(cls_ck, "Russian", 3)


# ---------------------------------------------------------------------------------------------
# Classification


def test_classify_streams_in_input_order(cls_ck: Checkpoint) -> None:
    names = [n for lang in tiny_names().values() for n in lang[:10]]
    consumed = []

    def source():
        for n in names:
            consumed.append(n)
            yield n

    stream = classify(cls_ck, source(), top=2, batch_size=7)
    first = next(stream)
    assert first.name == names[0] and len(consumed) == 7  # one batch read, not the whole input
    rest = list(stream)
    assert [p.name for p in [first, *rest]] == names


def test_classify_reads_an_endless_stream_lazily(cls_ck: Checkpoint) -> None:
    stream = classify(cls_ck, itertools.cycle(["Ivanov", "Yamamoto"]), batch_size=4)
    assert [p.name for p in itertools.islice(stream, 5)] == ["Ivanov", "Yamamoto"] * 2 + ["Ivanov"]


def test_probabilities_are_sorted_and_sum_to_at_most_one(cls_ck: Checkpoint) -> None:
    for p in classify(cls_ck, ["Ivanov", "Yamamoto", "Kowalski"], top=2):
        probs = [prob for _, prob in p.top]
        assert probs == sorted(probs, reverse=True)
        assert all(0 <= prob <= 1 for prob in probs) and sum(probs) <= 1 + 1e-6
    (full,) = classify(cls_ck, ["Ivanov"], top=10)
    assert len(full.top) == 3 and math.isclose(sum(p for _, p in full.top), 1.0, rel_tol=1e-5)


def test_case_is_normalised_like_the_data(cls_ck: Checkpoint) -> None:
    lower, upper, title = classify(cls_ck, ["ivanov", "IVANOV", "Ivanov"])
    assert lower.name == "ivanov"  # shown as given
    for other in (lower, upper):
        assert [lang for lang, _ in other.top] == [lang for lang, _ in title.top]
        assert [p for _, p in other.top] == pytest.approx([p for _, p in title.top])


def test_unknown_letters_are_reported_not_fatal(cls_ck: Checkpoint) -> None:
    (p,) = classify(cls_ck, ["Ivanovжq"])
    assert p.unknown_chars == ["ж", "q"]
    assert p.top


@pytest.mark.parametrize(("bad", "message"), [("", "name 2 is empty"), ("   ", "name 2 is empty"),
                                              ("1234", "name 2 .*no letters"), ("--'", "no letters")])
def test_empty_or_letterless_names_are_rejected(cls_ck: Checkpoint, bad: str, message: str) -> None:
    with pytest.raises(PoetgenError, match=message):
        list(classify(cls_ck, ["Ivanov", bad]))


def test_names_before_a_bad_one_are_still_answered(cls_ck: Checkpoint) -> None:
    stream = classify(cls_ck, ["Ivanov", "Yamamoto", "", "Kowalski"])
    assert [next(stream).name, next(stream).name] == ["Ivanov", "Yamamoto"]
    with pytest.raises(PoetgenError, match="name 3 is empty"):
        next(stream)


def test_lines_of_a_file_skip_blanks_and_errors_name_the_line(cls_ck: Checkpoint) -> None:
    answered = [p.name for p in classify(cls_ck, ["Ivanov", "", "  ", "Yamamoto", ""], lines=True, batch_size=2)]
    assert answered == ["Ivanov", "Yamamoto"]
    with pytest.raises(PoetgenError, match=r"line 3 .*no letters"):
        list(classify(cls_ck, ["Ivanov", "", "1234"], lines=True))


def test_classifier_beats_chance_clearly(cls_ck: Checkpoint, data_dir: Path) -> None:
    # Three languages: chance is 1/3. Endings decide the language, and names in test were never seen.
    scores = [evaluate_classifier(cls_ck, data_dir, split)["accuracy"] for split in ("val", "test")]
    assert sum(scores) / 2 >= 0.8, scores


# ---------------------------------------------------------------------------------------------
# Evaluation


def test_classifier_checkpoint_records_its_loss(cls_ck: Checkpoint) -> None:
    train = cls_ck.meta["train"]
    assert (train["class_weight_power"], train["label_smoothing"]) == (0.3, 0.1)


def test_names_presets_are_the_shipped_recipes() -> None:
    cfg = preset("names", "classify")
    assert cfg.model.model == "gru" and cfg.model.bidirectional and cfg.model.generative and cfg.validate() is cfg
    assert (cfg.class_weight_power, cfg.label_smoothing, cfg.augment) == (0.6, 0.1, True)
    shipped = load_checkpoint(bundled_checkpoint("classify")).meta
    keys = ("model", "hidden", "embed", "layers", "bidirectional", "ngram", "generative")
    assert {k: shipped["config"][k] for k in keys} == {k: getattr(cfg.model, k) for k in keys}
    assert {k: shipped["train"][k] for k in ("class_weight_power", "label_smoothing", "augment")} == \
        {"class_weight_power": 0.6, "label_smoothing": 0.1, "augment": True}
    assert shipped["calibration"]["split"] == "val"
    assert preset("names", "lm").class_weight_power == 0.5


def test_weighted_language_model_trains(data_dir: Path, tmp_path: Path) -> None:
    model = ModelConfig(model="gru", embed=8, hidden=16, layers=1, dropout=0.0, category_embed=4)
    cfg = TrainConfig(corpus="names", task="lm", data_dir=str(data_dir), model=model, max_steps=30,
                      batch_size=16, lr=1e-2, warmup=5, eval_every=30, threads=1)
    cfg.class_weight_power = 0.5
    record = Trainer(cfg, tmp_path / "lm").fit()
    ck = load_checkpoint(tmp_path / "lm")
    assert record["val_loss"] < math.log(len(ck.tokenizer))  # learnt something, finite
    assert ck.meta["train"]["class_weight_power"] == 0.5


def test_classifier_evaluation_has_sane_metrics(cls_ck: Checkpoint, data_dir: Path) -> None:
    result = evaluate_classifier(cls_ck, data_dir)
    assert result["fingerprint_match"] is True
    for key in ("accuracy", "macro_f1", "balanced_accuracy"):
        assert 0 <= result[key] <= 1
    assert result["labels"] == cls_ck.categories
    assert sum(map(sum, result["confusion"])) == result["names"] == sum(result["support"].values())
    assert set(result["precision"]) == set(result["recall"]) == set(cls_ck.categories)


def test_generator_evaluation_has_sane_metrics(gen_ck: Checkpoint, cls_ck: Checkpoint, data_dir: Path) -> None:
    result = evaluate_generator(gen_ck, cls_ck, data_dir, samples_per_language=10)
    assert 0 < result["nll_per_char"] < math.log(len(gen_ck.tokenizer))  # better than uniform
    for key in ("novelty", "uniqueness", "agreement"):
        assert 0 <= result[key] <= 1
    assert set(result["agreement_by_language"]) == set(gen_ck.categories)
    assert result["samples"] <= 30


# ---------------------------------------------------------------------------------------------
# Generalisation and calibration


def test_spelling_variants_are_forms_the_language_has() -> None:
    from poetgen.augment import variants

    assert variants("Ivanov", "Russian") == ["Ivanova"]
    assert variants("Dostoevsky", "Russian") == ["Dostoevskaya"]
    assert variants("Kowalski", "Polish") == ["Kowalska"]
    assert variants("Novotný", "Czech") == ["Novotná", "Novotna", "Novotny"]
    assert variants("Novák", "Czech")[:2] == ["Nováková", "Novakova"]
    assert variants("Müller", "German") == ["Mueller", "Muller"]
    assert variants("Smith", "English") == []  # nothing to vary


def test_variants_are_capped_and_never_a_held_out_name() -> None:
    from poetgen.augment import augmented
    from poetgen.corpora import Sample

    names = ("Dvořák", "Novák", "Král", "Beneš", "Hájek", "Fiala", "Zeman", "Kolář")
    train = [Sample(n, "Czech") for n in names]
    held_out = ["Dvorak", "Novakova", "Kralova"]
    out = augmented(train, held_out)
    added = out[len(train):]
    assert len(added) == 2  # at most a quarter of the language's names
    assert all(s.category == "Czech" and s.split == "train" for s in added)
    assert not {s.text for s in added} & {*held_out, *names}


def test_ngram_features_train_and_see_the_whole_name(data_dir: Path, tmp_path: Path) -> None:
    model = {"model": "gru", "embed": 16, "hidden": 32, "bidirectional": True, "ngram": 4, "ngram_buckets": 512}
    ck = _train(data_dir, tmp_path / "ngram", "classify", model, 150)
    assert ck.model.ngrams is not None and ck.config.ngram == 4
    assert evaluate_classifier(ck, data_dir, "test")["accuracy"] >= 0.7
    # the bag is order-free within an n-gram's reach, and framed: Ab and bA differ at the edges
    tokens = torch.tensor([ck.tokenizer.encode("Ab"), ck.tokenizer.encode("bA")])
    bags = ck.model.ngram_bag(tokens, torch.tensor([2, 2]))
    assert not torch.allclose(bags[0], bags[1])


@pytest.fixture(scope="module")
def hybrid_ck(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    """A classifier with a language model beside it (--generative)."""
    model = {"model": "gru", "embed": 16, "hidden": 32, "dropout": 0.0, "bidirectional": True, "generative": 32}
    return _train(data_dir, tmp_path_factory.mktemp("hybrid"), "classify", model, 150)


def test_generative_classifier_decides_by_its_fitted_mixture(hybrid_ck: Checkpoint, data_dir: Path) -> None:
    a, b = hybrid_ck.model.mix.tolist()
    assert b > 0, "validation found nothing in the language model"
    assert evaluate_classifier(hybrid_ck, data_dir, "test")["accuracy"] >= 0.7
    ids = [hybrid_ck.tokenizer.encode(n) for n in ("Ivanov", "Yamamoto", "Kowalski")]
    tokens, lengths = pad(ids), torch.tensor([len(x) for x in ids])
    parts = hybrid_ck.model.parts(tokens, lengths)
    assert torch.allclose(hybrid_ck.model(tokens, lengths), a * parts[:, 0] + b * parts[:, 1], atol=1e-5)
    assert [hybrid_ck.categories[i] for i in parts[:, 1].argmax(-1)] == ["Russian", "Japanese", "Polish"]


def test_generative_half_scores_names_as_a_language_model_reads_them(hybrid_ck: Checkpoint) -> None:
    """log P(name | language) of the classifier's language model is the sum over <bos> name <eos>
    that language-model training uses, whatever the other names in the batch (padding)."""
    lm = hybrid_ck.model.lm
    names = ["Ivanov", "Li", "Kowalczyk"]
    ids = [hybrid_ck.tokenizer.encode(n) for n in names]
    with torch.no_grad():
        scores = hybrid_ck.model.name_log_likelihood(pad(ids), torch.tensor([len(x) for x in ids]))
        for row, name_ids in zip(scores, ids, strict=True):
            for c in range(len(hybrid_ck.categories)):
                batch = collate_lm([Example(name_ids, c)])
                alone = lm.token_log_probs(batch["tokens"], batch["targets"], batch["category"]).sum()
                assert float(row[c]) == pytest.approx(float(alone), abs=1e-4)


def test_fitting_the_mixture_never_does_worse_than_either_half(hybrid_ck: Checkpoint, data_dir: Path) -> None:
    from poetgen.evaluate import classifier_logits, fit_mixture, split_samples

    _, samples, _ = split_samples(hybrid_ck, data_dir, "val")
    scores, labels = classifier_logits(hybrid_ck.model, encode(samples, hybrid_ck.tokenizer, hybrid_ck.categories),
                                       parts=True)
    saved = hybrid_ck.model.mix.clone()
    try:
        hybrid_ck.model.mix.copy_(torch.tensor([1.0, 0.0]))
        a, b = fit_mixture(hybrid_ck.model, scores, labels)
        fitted = torch.nn.functional.cross_entropy(a * scores[:, 0] + b * scores[:, 1], labels)
        linear_only = torch.nn.functional.cross_entropy(scores[:, 0], labels)
        assert float(fitted) <= float(linear_only) + 1e-6
    finally:
        hybrid_ck.model.mix.copy_(saved)


def test_generative_applies_to_classifiers_only() -> None:
    with pytest.raises(PoetgenError, match="generative applies to classifiers only"):
        TrainConfig(corpus="names", task="lm", model=ModelConfig(generative=64)).validate()


def test_old_tutorial_configs_that_claim_the_presets_extras_still_load() -> None:
    """Earlier versions recorded the classify preset's n-grams etc. for a tutorial-rnn they never
    built; such a config reads as the network it describes."""
    old = ModelConfig(task="classify", model="tutorial-rnn", vocab_size=30, num_categories=3, layers=1,
                      bidirectional=True, ngram=4, generative=384).to_dict()
    cfg = ModelConfig.from_dict(old)
    assert (cfg.bidirectional, cfg.ngram, cfg.generative, cfg.hidden) == (False, 0, 0, old["hidden"])
    with pytest.raises(PoetgenError, match=r"^bidirectional does not apply to the tutorial-rnn model"):
        ModelConfig(task="classify", model="tutorial-rnn", layers=1, bidirectional=True).validate_choices()


def test_fitted_temperature_undoes_overconfidence() -> None:
    from poetgen.evaluate import expected_calibration_error, fit_temperature

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4000, 6, generator=g) * 2
    labels = torch.multinomial(logits.softmax(-1), 1, generator=g).squeeze(-1)  # calibrated at T = 1
    assert fit_temperature(logits * 3, labels) == pytest.approx(3.0, rel=0.1)
    raw = expected_calibration_error((logits * 3).softmax(-1), labels)
    fixed = expected_calibration_error((logits * 3 / fit_temperature(logits * 3, labels)).softmax(-1), labels)
    assert fixed < raw / 2 and fixed < 0.03


def test_classifier_checkpoints_carry_their_calibration(cls_ck: Checkpoint) -> None:
    from poetgen.names.classify import probabilities, temperature

    t = cls_ck.meta["calibration"]["temperature"]
    assert cls_ck.meta["calibration"]["split"] == "val" and 0.05 <= t <= 20 and temperature(cls_ck) == t
    ids = cls_ck.tokenizer.encode("Ivanov")
    logits = cls_ck.model(torch.tensor([ids]), torch.tensor([len(ids)]))
    assert torch.allclose(probabilities(cls_ck, ["Ivanov"]), (logits / t).softmax(-1), atol=1e-6)


def test_a_coin_toss_is_marked_unsure() -> None:
    from poetgen.names.classify import Prediction
    from poetgen.render import classify_table

    sure = Prediction("Ivanov", [("Russian", 0.9), ("Czech", 0.05)])
    toss = Prediction("Hou", [("Chinese", 0.38), ("Korean", 0.35)])
    assert not sure.unsure and toss.unsure
    assert toss.to_dict()["unsure"] is True and sure.to_dict()["unsure"] is False
    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(classify_table([sure.to_dict(), toss.to_dict()]))
    text = console.export_text()
    assert text.count("unsure") == 1 and "Hou" in text


# ---------------------------------------------------------------------------------------------
# The assignment's own RNNs (tutorial.py)


@pytest.fixture(scope="module")
def tutorial_cls(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Checkpoint:
    return _train(data_dir, tmp_path_factory.mktemp("tutorial-cls"), "classify", {"model": "tutorial-rnn"}, 150)


def test_tutorial_classifier_prints_the_assignments_structure(tutorial_cls: Checkpoint) -> None:
    text, v, h = str(tutorial_cls.model), tutorial_cls.config.vocab_size, tutorial_cls.config.hidden
    assert f"(i2h): Linear(in_features={v + h}, out_features={h}, bias=True)" in text
    assert f"(i2o): Linear(in_features={v + h}, out_features=3, bias=True)" in text
    assert "(softmax): LogSoftmax(dim=1)" in text and text.count("\n") == 4  # nothing else


def test_tutorial_classifier_batched_is_the_tutorials_one_name_loop(tutorial_cls: Checkpoint) -> None:
    model, tok = tutorial_cls.model, tutorial_cls.tokenizer
    names = ["Ivanov", "Abe", "Kowalczyk"]
    ids = [tok.encode(n) for n in names]
    batched = model(torch.nn.utils.rnn.pad_sequence([torch.tensor(i) for i in ids], batch_first=True),
                    torch.tensor([len(i) for i in ids]))
    for row, name_ids in zip(batched, ids, strict=True):  # as the tutorial: one letter tensor at a time
        hidden = torch.zeros(1, tutorial_cls.config.hidden)
        for t in name_ids:
            letter = torch.nn.functional.one_hot(torch.tensor([t]), tutorial_cls.config.vocab_size).float()
            combined = torch.cat([letter, hidden], dim=1)
            hidden, output = model.i2h(combined), model.softmax(model.i2o(combined))
        assert torch.allclose(row, output[0], atol=1e-5)


def test_tutorial_generator_trains_and_samples_through_the_library(data_dir: Path, tmp_path: Path,
                                                                    tutorial_cls: Checkpoint) -> None:
    gen = _train(data_dir, tmp_path / "gen", "lm", {"model": "tutorial-rnn", "hidden": 64, "dropout": 0.1}, 200)
    text = str(gen.model)
    for layer in ("i2h): Linear", "i2o): Linear", "o2o): Linear", "dropout): Dropout(p=0.1", "softmax): LogSoftmax"):
        assert f"({layer}" in text
    names = generate_names(gen, "Japanese", 5, sampling=Sampling(seed=0))
    assert len(names) == 5 and all(n[0].isupper() for n in names)
    assert evaluate_generator(gen, tutorial_cls, data_dir, samples_per_language=10)["nll_per_char"] < 2.9
    # the tutorial's classifier, batched and masked, learns the three languages well past chance (1/3)
    assert evaluate_classifier(tutorial_cls, data_dir, "test")["accuracy"] >= 0.6
