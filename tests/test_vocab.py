"""Tokenizers: reserved ids, round trips, unknown characters."""

from __future__ import annotations

import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from poetgen.vocab import BOS, EOS, PAD, UNK, CharVocab, JiebaVocab, SentencePieceVocab, tokenizer_from_dict

TEXTS = ["床前明月光，疑是地上霜。", "举头望明月，低头思故乡。", "Ivanov", "Wiśniewski"]
VOCAB = CharVocab.build(TEXTS)
ALPHABET = "".join(VOCAB.tokens[4:])


def test_specials_have_reserved_ids():
    assert VOCAB.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (PAD, BOS, EOS, UNK) == (0, 1, 2, 3)


def test_most_frequent_characters_come_first():
    # adaptive softmax puts the first ids in its cheap head cluster: they must be the frequent ones
    counts = {t: sum(text.count(t) for text in TEXTS) for t in VOCAB.tokens[4:]}
    ranked = [counts[t] for t in VOCAB.tokens[4:]]
    assert ranked == sorted(ranked, reverse=True)


@given(st.text(alphabet=ALPHABET, max_size=50))
def test_char_round_trip(text: str):
    assert VOCAB.decode(VOCAB.encode(text)) == text


@given(st.text(max_size=30))
def test_unknown_characters_become_unk_and_are_reported(text: str):
    ids = VOCAB.encode(text)
    assert len(ids) == len(text)
    missing = VOCAB.unknown(text)
    assert all(ch not in VOCAB.index for ch in missing)
    assert (UNK in ids) == bool(missing)


def test_min_freq_and_max_size():
    small = CharVocab.build(TEXTS, min_freq=2)
    assert "月" in small.index and "床" not in small.index
    capped = CharVocab.build(TEXTS, max_size=6)
    assert len(capped) == 6


def test_serialisation_round_trip():
    again = tokenizer_from_dict(VOCAB.to_dict())
    assert again.tokens == VOCAB.tokens and again.kind == "char"


def test_jieba_words_round_trip():
    vocab = JiebaVocab.build(["我们 喜欢 明月", "明月 照 我们"])
    assert vocab.decode(vocab.encode("我们喜欢明月")) == "我们喜欢明月"
    assert UNK in vocab.encode("火星")


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_sentencepiece_round_trips_after_nfkc(data: st.DataObject):
    text = data.draw(st.text(alphabet="床前明月光疑是地上霜举头望低思故乡，。", min_size=1, max_size=20))
    vocab = SENTENCEPIECE
    assert vocab.decode(vocab.encode(text)) == unicodedata.normalize("NFKC", text)


SENTENCEPIECE = SentencePieceVocab.build(TEXTS * 20 + ["床前明月光，疑是地上霜。举头望明月，低头思故乡。"] * 20,
                                         vocab_size=40)


def test_sentencepiece_serialises_its_model():
    again = tokenizer_from_dict(SENTENCEPIECE.to_dict())
    assert again.encode("明月光") == SENTENCEPIECE.encode("明月光")
