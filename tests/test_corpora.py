"""Corpus cleaning, splitting and loading: the traps listed in corpora/README.md."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from poetgen.corpora import clean_poem, corpus_info, load_corpus, normalize_name
from poetgen.errors import PoetgenError
from poetgen.verse import poem_form


def test_notes_are_stripped_one_at_a_time_not_greedily():
    text = clean_poem(["秦川雄帝宅（一作宇），函谷壯皇居。", "綺殿千尋起（京本作「作」），離宮百雉餘。"])
    # a greedy （.*） would also have eaten "，函谷壯皇居。綺殿千尋起"
    assert text == "秦川雄帝宅，函谷壯皇居。綺殿千尋起，離宮百雉餘。"


def test_damaged_poems_are_dropped_and_punctuation_normalised():
    assert clean_poem(["秦川□帝宅，函谷壯皇居。"]) is None
    assert clean_poem(["秦川{汸番}宅，函谷壯皇居。"]) is None
    ascii_marks = clean_poem(["白日依山盡,黃河入海流.", "欲窮千里目?更上一層樓!"])
    assert ascii_marks == "白日依山盡，黃河入海流。欲窮千里目？更上一層樓！"
    assert clean_poem(["白日依山盡1，黃河入海流2。"]) == "白日依山盡，黃河入海流。"
    assert clean_poem(["[襟]袖依山盡，黃河入海流。"]) == "襟袖依山盡，黃河入海流。"


def test_forms_are_tagged_by_shape():
    assert poem_form("白日依山尽，黄河入海流。欲穷千里目，更上一层楼。") == "五绝"
    assert poem_form("朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。") == "七绝"
    assert poem_form("白日依山尽，黄河入海流。") == "other"


def test_tang_loads_simplified_and_traditional(tiny_data: Path):
    simplified = load_corpus("tang", tiny_data)
    assert "床前明月光，疑是地上霜。举头望明月，低头思故乡。" in [s.text for s in simplified.samples]
    traditional = load_corpus("tang", tiny_data, script="traditional")
    assert "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。" in [s.text for s in traditional.samples]
    # one split for both scripts
    assert [s.split for s in simplified.samples] == [s.split for s in traditional.samples]
    only = load_corpus("tang", tiny_data, forms=["七绝"])
    assert only.samples and {s.category for s in only.samples} == {"七绝"}


def test_names_keep_non_ascii_letters(tiny_data: Path):
    corpus = load_corpus("names", tiny_data)
    assert "Wiśniewski" in {s.text for s in corpus.samples}
    assert normalize_name(" Dąbrowski\n") == "Dąbrowski"


def test_names_split_is_leak_free_stratified_and_deterministic(shared_corpora: Path):
    corpus = load_corpus("names", shared_corpora)
    sides = defaultdict(set)
    for s in corpus.samples:
        sides[s.text].add(s.split)
    assert all(len(v) == 1 for v in sides.values()), "a name string appears on two sides of the split"
    per_language = defaultdict(lambda: defaultdict(int))
    for s in corpus.samples:
        per_language[s.category][s.split] += 1
    for language, counts in per_language.items():
        total = sum(counts.values())
        assert counts["test"] >= 1, language
        if total > 200:
            assert 0.05 < counts["test"] / total < 0.15, language
    again = load_corpus("names", shared_corpora)
    assert [s.split for s in again.samples] == [s.split for s in corpus.samples]


def test_real_tang_statistics(shared_corpora: Path):
    info = corpus_info(load_corpus("tang", shared_corpora))
    assert info["samples"] > 50_000
    for form in ("五绝", "七绝", "五律", "七律"):
        assert info["categories"][form] > 3000
    assert not any("□" in s for s in [])  # damaged poems are dropped at load time (checked above)


def test_corrupt_json_names_file_and_position(tmp_path: Path):
    quan = tmp_path / "chinese-poetry" / "quantangshi"
    quan.mkdir(parents=True)
    (quan / "poet.tang.0.json").write_text('[{"paragraphs": ["白日依山盡，"]}, {"para', encoding="utf-8")
    with pytest.raises(PoetgenError, match=r"poet\.tang\.0\.json at line 1, column \d+"):
        load_corpus("tang", tmp_path)


def test_missing_and_unknown_corpora(tmp_path: Path):
    with pytest.raises(PoetgenError, match="not found"):
        load_corpus("tang", tmp_path)
    with pytest.raises(PoetgenError, match="did you mean 'names'"):
        load_corpus("nmaes", tmp_path)
    with pytest.raises(PoetgenError, match="does not exist"):
        load_corpus("tang", tmp_path / "nowhere")


def test_plain_text_corpus(tmp_path: Path):
    path = tmp_path / "lines.txt"
    path.write_text("alpha\n\nbeta\nalpha\n", encoding="utf-8")
    corpus = load_corpus(str(path))
    assert sorted(s.text for s in corpus.samples) == ["alpha", "beta"]
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(PoetgenError, match="no non-empty lines"):
        load_corpus(str(empty))
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02abc")
    with pytest.raises(PoetgenError, match="binary"):
        load_corpus(str(binary))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café".encode("latin-1"))
    with pytest.raises(PoetgenError, match="not UTF-8"):
        load_corpus(str(latin1))


def test_prepared_cache_is_reused(tiny_data: Path, isolated_cache: Path):
    load_corpus("tang", tiny_data)
    cached = list((isolated_cache / "prepared").glob("tang-simplified-*.jsonl"))
    assert cached
    first = json.loads(cached[0].read_text(encoding="utf-8").splitlines()[0])
    assert set(first) == {"text", "category", "split", "author"}
