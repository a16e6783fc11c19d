"""Each rule of the decoding pipeline on its own: what it allows at a slot, given the poem so far.

The rules read only the vocabulary (the shipped poem model's, so characters have their real tones
and rhyme groups) and the history; no model runs here. Drawing with them is tested in
test_poems.py (every sample of every form keeps its form) and test_golden.py."""

from __future__ import annotations

import math

import pytest
import torch

from poetgen.checkpoint import Checkpoint, load_for
from poetgen.poems import cilin, prosody, tunes
from poetgen.poems.duizhang import Parallel, pair_table
from poetgen.poems.forms import TABLE, Form
from poetgen.poems.masks import VocabMasks, vocab_masks
from poetgen.poems.repeats import LineRepeats, Novelty, PoemRepeats
from poetgen.poems.rules import MOOD_BONUS, FirstLine, Fixed, Mood, ObliqueEnds, Rhyme, Shape
from poetgen.poems.seasons import Season, clashes
from poetgen.poems.slot import OPEN, Slot
from poetgen.poems.stock import StockPhrases, stock_phrases
from poetgen.poems.tones import LevelTail, TonePattern
from poetgen.poems.tune_rules import TuneRhyme, TuneTones
from poetgen.sample import Rule, constrain

RHYMES = prosody.table("pingshui")


@pytest.fixture(scope="module")
def ck() -> Checkpoint:
    return load_for("poems", None)


@pytest.fixture(scope="module")
def vocab(ck: Checkpoint) -> VocabMasks:
    return vocab_masks(ck)


def slot(vocab: VocabMasks, form: Form, lines: list[str], line: int, pos: int, redraw: str | None = None) -> Slot:
    """A one-row slot: ``lines`` hold what is written so far ("" or a start of each line)."""
    chars = torch.full((1, form.lines, form.width), OPEN, dtype=torch.long)
    for i, text in enumerate(lines):
        for j, ch in enumerate(text):
            chars[0, i, j] = vocab.char_id[ch]
    ban = torch.tensor([vocab.char_id[redraw]]) if redraw else None
    return Slot(line, pos, chars, ban)


def allowed(vocab: VocabMasks, rule: Rule, at: Slot) -> set[str]:
    logits = rule(at, torch.zeros(1, len(vocab.tokens)))
    return {vocab.tokens[i] for i in torch.isfinite(logits[0]).nonzero().flatten().tolist()}


def level(ch: str) -> bool:
    return RHYMES.tones(ch) == {prosody.LEVEL}


def oblique(ch: str) -> bool:
    return RHYMES.tones(ch) == {prosody.OBLIQUE}


FIVE, SEVEN_LU = TABLE["五绝"], TABLE["七律"]


def test_shape_puts_the_plans_mark_after_a_line_and_characters_inside_it(vocab: VocabMasks) -> None:
    rule = Shape(vocab, ["，", "。", "，", "！"])
    assert allowed(vocab, rule, slot(vocab, FIVE, [""], 3, 5)) == {"！"}
    assert allowed(vocab, rule, slot(vocab, FIVE, [""], 0, 5)) == {"，"}
    inside = allowed(vocab, rule, slot(vocab, FIVE, [""], 0, 2))
    assert "山" in inside and not inside & {"，", "。", "<eos>", "<pad>", "a"}


def test_fixed_keeps_the_plans_characters_where_the_plan_put_them(vocab: VocabMasks) -> None:
    rule = Fixed(vocab, ["青山", "", "秋", ""])
    assert allowed(vocab, rule, slot(vocab, FIVE, ["青"], 0, 1)) == {"山"}
    assert allowed(vocab, rule, slot(vocab, FIVE, [], 2, 0)) == {"秋"}
    assert len(allowed(vocab, rule, slot(vocab, FIVE, ["青山"], 0, 2))) == len(vocab.tokens)  # free there


def test_mood_lifts_its_characters_by_the_bonus_and_leaves_marks_alone(vocab: VocabMasks) -> None:
    rule = Mood(len(vocab.tokens), [vocab.char_id["秋"]], torch.device("cpu"))
    out = rule(slot(vocab, FIVE, [""], 0, 1), torch.zeros(1, len(vocab.tokens)))
    assert out[0, vocab.char_id["秋"]] == MOOD_BONUS and out[0, vocab.char_id["春"]] == 0
    assert rule(slot(vocab, FIVE, [""], 0, 5), torch.zeros(1, len(vocab.tokens))).abs().sum() == 0


def test_novelty_bans_the_copys_last_character_on_a_redraw_only(ck: Checkpoint, vocab: VocabMasks) -> None:
    rule = Novelty(ck)
    assert allowed(vocab, rule, slot(vocab, FIVE, ["白日依山"], 0, 4, redraw="尽")) == set(vocab.tokens) - {"尽"}
    assert len(allowed(vocab, rule, slot(vocab, FIVE, ["白日依山"], 0, 4))) == len(vocab.tokens)
    lines = ["白日依山尽", "山山山山山"]
    assert rule.copied(lines) == [ck.has_seen(line) for line in lines]


def test_rhyme_keeps_the_group_and_never_reuses_a_rhyme_character(vocab: VocabMasks) -> None:
    rule = Rhyme(vocab, FIVE, ["", "", "", ""])
    at = slot(vocab, FIVE, ["白日依山尽", "黄河入海流", "欲穷千里目", "更上一层"], 3, 4)
    ends = allowed(vocab, rule, at)
    assert "楼" in ends and "流" not in ends and "尽" not in ends  # 流 was used: no 重韵
    assert all(RHYMES.level_groups(ch) & RHYMES.level_groups("流") for ch in ends)
    assert len(allowed(vocab, rule, slot(vocab, FIVE, ["白日依山"], 0, 4))) == len(vocab.tokens)  # not a rhyme slot


def test_first_line_ending_on_a_level_character_rhymes(vocab: VocabMasks) -> None:
    rhyme = Rhyme(vocab, FIVE, ["", "黄河入海流", "", ""])  # the plan fixes the rhyme: 尤
    ends = allowed(vocab, FirstLine(rhyme), slot(vocab, FIVE, ["白日依山", "黄河入海流"], 0, 4))
    assert "尽" in ends and "愁" in ends and "光" not in ends  # 仄, or 平 in 尤; 光 (阳) would break it
    assert all(not level(ch) or RHYMES.level_groups(ch) & RHYMES.level_groups("流") for ch in ends)
    # read both ways, with its 平 reading in 灰: a reader hears 回 off a 尤 rhyme
    assert RHYMES.level_groups("回") and "回" not in ends
    # and a level first line fixes the group that the later rhyme lines keep
    at = slot(vocab, FIVE, ["白日依山光", "黄河入海"], 1, 4)
    ends = allowed(vocab, Rhyme(vocab, FIVE, [""] * 4), at)
    assert "霜" in ends and all(RHYMES.level_groups(ch) & RHYMES.level_groups("光") for ch in ends)
    # so does a first line ending on a character also read 仄 (回: 灰 or 队): the reader hears 灰
    ends = allowed(vocab, Rhyme(vocab, FIVE, [""] * 4), slot(vocab, FIVE, ["白日依山回", "黄河入海"], 1, 4))
    assert "来" in ends and "流" not in ends


def test_a_character_read_in_two_groups_rhymes_only_where_tang_poets_rhymed_it(vocab: VocabMasks) -> None:
    assert RHYMES.level_groups("平") == {"下平聲八庚", "下平聲一先"}  # the table allows both

    def last_rhyme(rhyme_char: str) -> set[str]:
        lines = ["白日依山尽", "黄河入海" + rhyme_char, "欲穷千里目", "更上一层"]
        return allowed(vocab, Rhyme(vocab, FIVE, [""] * 4), slot(vocab, FIVE, lines, 3, 4))

    xian = last_rhyme("天")
    assert "年" in xian and "平" not in xian and "还" not in xian  # 还 is 删 to the ear (580 uses to 6)
    assert {"平", "行", "明"} <= last_rhyme("城")
    yang = last_rhyme("光")
    assert "行" in yang and "平" not in yang  # 行 háng: Tang poets rhymed it in 阳 195 times
    # and line 1: 平 closing line 1 of a 先 poem would sound off the rhyme
    rhyme = Rhyme(vocab, FIVE, ["", "黄河入海天", "", ""])
    assert "平" not in allowed(vocab, FirstLine(rhyme), slot(vocab, FIVE, ["白日依山", "黄河入海天"], 0, 4))


def test_oblique_ends_on_odd_lines_after_the_first(vocab: VocabMasks) -> None:
    rule = ObliqueEnds(vocab, FIVE)
    ends = allowed(vocab, rule, slot(vocab, FIVE, ["白日依山尽", "黄河入海流", "欲穷千里"], 2, 4))
    assert "目" in ends and "楼" not in ends and all(not level(ch) for ch in ends)


def test_line_repeats_bans_every_character_already_in_the_line(vocab: VocabMasks) -> None:
    chars = allowed(vocab, LineRepeats(), slot(vocab, FIVE, ["青山青"], 0, 3))
    assert "青" not in chars and "山" not in chars and "水" in chars


def test_poem_repeats_keep_the_forms_budget_never_thrice_and_no_phrase_twice(vocab: VocabMasks) -> None:
    lines = ["青山白日远", "明月照江流", "春"]
    strict = allowed(vocab, PoemRepeats(0), slot(vocab, FIVE, lines, 2, 1))
    assert "山" not in strict and "月" not in strict and "水" in strict
    assert "山" in allowed(vocab, PoemRepeats(1), slot(vocab, FIVE, lines, 2, 1))  # one repeat allowed
    spent = allowed(vocab, PoemRepeats(1), slot(vocab, FIVE, ["青山白日远", "明月照江流", "江"], 2, 1))
    assert "山" not in spent and "水" in spent  # the second 江 spent the budget
    thrice = allowed(vocab, PoemRepeats(5), slot(vocab, FIVE, ["青山白日远", "青山照江流", "明"], 2, 1))
    assert "青" not in thrice  # a third 青
    phrase = allowed(vocab, PoemRepeats(5), slot(vocab, FIVE, ["青山白日远", "明月照江流", "白"], 2, 1))
    assert "日" not in phrase  # 白日 twice


def test_season_closes_the_seasons_that_clash_with_the_one_the_poem_names(vocab: VocabMasks) -> None:
    form, rule = TABLE["五律"], Season(vocab)
    spring = allowed(vocab, rule, slot(vocab, form, ["南地春风起", "西园"], 1, 2))
    assert not {"秋", "夏", "冬", "菊", "砧", "凉"} & spring
    assert {"莺", "杏", "花", "柳", "梅"} <= spring  # spring's own markers, and what no season owns
    autumn = allowed(vocab, rule, slot(vocab, form, ["蝉鸣高树", ""], 0, 4))  # 蝉: no side (0.16)
    assert {"春", "秋", "菊", "莺"} <= autumn
    marker = allowed(vocab, rule, slot(vocab, form, ["黄菊", ""], 0, 2))  # 菊 stands with autumn
    assert "春" not in marker and "莺" not in marker and "秋" in marker and "冬" in marker
    nothing = allowed(vocab, rule, slot(vocab, form, ["青山", ""], 0, 2))
    assert {"春", "夏", "秋", "冬"} <= nothing
    # words: 黄叶 stands with autumn, so 春 is out; and in an autumn poem 东 may stand, but not before 风
    assert "春" not in allowed(vocab, rule, slot(vocab, form, ["黄叶满山", ""], 0, 4))
    after_east = allowed(vocab, rule, slot(vocab, form, ["秋山东"], 0, 3))
    assert "风" not in after_east and "流" in after_east
    assert "风" in allowed(vocab, rule, slot(vocab, form, ["秋山西"], 0, 3))
    assert clashes("秋园独掩扉，莺啼晓漏微。") and clashes("春风起，花开承露菊。")
    assert not clashes("春风起，莺啼晓漏微。") and clashes("東風吹黃葉") and not clashes("東風吹落花")


def test_stock_phrases_lower_the_last_character_after_the_rest_of_the_phrase(vocab: VocabMasks) -> None:
    rule = StockPhrases(vocab, {"不知何处": 100.0, "相逢不": 20.0})
    scores = rule(slot(vocab, SEVEN_LU, ["", "", "", "", "", "", "不知何"], 6, 3), torch.zeros(1, len(vocab.tokens)))[0]
    assert scores[vocab.char_id["处"]] == pytest.approx(-math.log(100.0)) and scores[vocab.char_id["事"]] == 0
    scores = rule(slot(vocab, SEVEN_LU, ["相逢"], 0, 2), torch.zeros(1, len(vocab.tokens)))[0]
    assert scores[vocab.char_id["不"]] == pytest.approx(-math.log(20.0))
    elsewhere = rule(slot(vocab, SEVEN_LU, ["何处不知"], 0, 4), torch.zeros(1, len(vocab.tokens)))
    assert elsewhere.abs().sum() == 0  # only the phrase's own order, inside one line


def test_the_shipped_models_carry_their_measured_stock_phrases(ck: Checkpoint) -> None:
    phrases = stock_phrases(ck)
    assert phrases and all(3 <= len(p) <= 4 and ratio >= 10 for p, ratio in phrases.items())
    assert stock_phrases(load_for("ci", None))  # re-measure (tools/build_stock_phrases.py) when a model changes


def test_tone_pattern_follows_the_base_the_first_sure_key_character_sets(vocab: VocabMasks) -> None:
    rule = TonePattern(vocab, FIVE)
    # 日 (仄, 入声) at line 1's 2nd place: line 2's 2nd place is 平 (对) and line 1's 4th is 平 (二四分明)
    for at in (slot(vocab, FIVE, ["白日依山尽", "黄"], 1, 1), slot(vocab, FIVE, ["白日依"], 0, 3)):
        chars = allowed(vocab, rule, at)
        assert "河" in chars and "海" not in chars and not any(oblique(ch) for ch in chars)
    assert len(allowed(vocab, rule, slot(vocab, FIVE, ["白"], 0, 2))) == len(vocab.tokens)  # not a key place


def test_level_tail_avoids_three_level_tones_and_a_lone_level_tone(vocab: VocabMasks) -> None:
    pattern = TonePattern(vocab, FIVE)
    rule = LevelTail(vocab, FIVE, pattern)
    # line 2 of a poem whose base makes it 仄仄平平仄 / 平平仄仄平 ...: here line 2 wants 4th = 平
    # (白日: base 仄, line 2 key pattern .1.0. → 2nd 平, 4th 仄); use line 4 (.0.1.): 4th = 平
    lines = ["白日依山尽", "黄河入海流", "欲穷千里目", "更上"]
    assert pattern.wanted(slot(vocab, FIVE, lines, 3, 2), 3).item() == 0  # 平 wanted at the 4th place
    third = allowed(vocab, rule, slot(vocab, FIVE, lines, 3, 2))
    assert not any(level(ch) for ch in third)  # else 平平平 at the end
    # line 2 wants 仄 at its 4th place (平平仄仄平): after a 仄 first character, the third must be 平
    lone = allowed(vocab, rule, slot(vocab, FIVE, ["白日依山尽", "落河"], 1, 2))
    assert not any(oblique(ch) for ch in lone)  # 仄平仄仄平 is 孤平
    assert len(allowed(vocab, rule, slot(vocab, FIVE, ["白日"], 0, 2))) == len(vocab.tokens)  # line 1: free
    # ... until its last character: after 平平 it ends 仄 (or unsure), never on a third sure 平
    end = allowed(vocab, rule, slot(vocab, FIVE, ["白日依山"], 0, 4))
    assert "光" not in end and "尽" in end and not any(level(ch) for ch in end)
    assert "光" in allowed(vocab, rule, slot(vocab, FIVE, ["白日依水"], 0, 4))


def test_parallel_answers_the_facing_character_and_never_repeats_it(vocab: VocabMasks) -> None:
    rule = Parallel(vocab.tokens, SEVEN_LU)
    lines = ["", "", "千山鸟飞绝", ""]
    at = slot(vocab, SEVEN_LU, lines, 3, 0)
    out = rule(at, torch.zeros(1, len(vocab.tokens)))[0]
    assert out[vocab.char_id["千"]] == -math.inf  # a character never faces itself
    assert out[vocab.char_id["万"]] > out[vocab.char_id["鸟"]] > -math.inf  # a number answers a number
    assert pair_table().pair("春", "秋") > pair_table().pair("春", "酒")
    assert rule(slot(vocab, SEVEN_LU, lines, 2, 1), torch.zeros(1, len(vocab.tokens))).abs().sum() == 0


def test_constrain_lets_a_soft_rule_give_way_only_in_the_rows_it_would_empty() -> None:
    class Only(Rule):
        def __init__(self, token: int, soft: bool) -> None:
            self.token, self.soft = token, soft

        def __call__(self, context: object, logits: torch.Tensor) -> torch.Tensor:
            keep = torch.full_like(logits, -math.inf)
            keep[:, self.token] = 0
            return logits + keep

    logits = torch.tensor([[0.0, 0.0, 0.0], [-math.inf, 0.0, 0.0]])
    out = constrain([Only(0, soft=True)], None, logits)
    assert torch.isfinite(out[0]).tolist() == [True, False, False]  # applied
    assert torch.isfinite(out[1]).tolist() == [False, True, True]  # would leave nothing: skipped
    hard = constrain([Only(0, soft=False)], None, logits)
    assert not torch.isfinite(hard[1]).any()  # a hard rule always applies


def test_name_rules_letters_only_never_empty_and_the_languages_pull() -> None:
    from poetgen.names.generate import LanguageGuidance, NameLetters, NameStep, NotEmpty, name_rules
    from poetgen.vocab import BOS, EOS, PAD

    names = load_for("names", None)
    tokens = names.tokenizer.tokens
    V = len(tokens)
    step0 = NameStep(0, torch.zeros(1, 2, V), None)
    letters = NameLetters(tokens)(step0, torch.zeros(1, V))[0]
    assert letters[PAD] == letters[BOS] == -math.inf and torch.isfinite(letters[tokens.index("a")])
    assert NotEmpty([])(step0, torch.zeros(1, V))[0, EOS] == -math.inf  # no empty name
    assert torch.isfinite(NotEmpty([5])(step0, torch.zeros(1, V))[0, EOS])  # a start already holds letters
    # Two languages, equally likely so far; the asked one (its own log-probs) prefers token 7 where the
    # other does not: guidance lifts 7 above what the asked language alone gives it.
    by_language = torch.full((1, 2, V), -5.0)
    by_language[0, 0, 7], by_language[0, 1, 8] = -1.0, -1.0
    step1 = NameStep(1, by_language, torch.zeros(1, 2))
    own = by_language[:, 0]
    pulled = LanguageGuidance(2.0, [])(step1, own)
    assert pulled[0, 7] - pulled[0, 8] > own[0, 7] - own[0, 8]
    assert LanguageGuidance(2.0, [])(NameStep(0, by_language, torch.zeros(1, 2)), own).equal(own)  # not the 1st letter
    assert len(name_rules(tokens, [], 0.0)) == 2 and len(name_rules(tokens, [], 3.0)) == 3


def tune_slot(vocab: VocabMasks, form: Form, lines: list[str], line: int, pos: int) -> Slot:
    """A one-row slot of a tune whose lines differ in length (written from the left)."""
    chars = torch.full((1, form.lines, form.width), OPEN, dtype=torch.long)
    for i, text in enumerate(lines):
        for j, ch in enumerate(text):
            chars[0, i, j] = vocab.char_id[ch]
    return Slot(line, pos, chars, None, form.widths)


def test_a_tunes_rhyme_sets_keep_one_bu_in_the_tone_the_tune_rhymes_in(vocab: VocabMasks) -> None:
    form = tunes.form("菩萨蛮")  # 7 7 5 5 5 5 5 5; sets (1 2) (3 4) (5 6) (7 8), 仄仄平平仄仄平平
    rule = TuneRhyme(vocab, form)
    written = ["平林漠漠烟如织", "寒山一带伤心碧", "暝色入高楼", "有人楼上"]
    at = tune_slot(vocab, form, written, 3, 4)
    assert at.last and at.ends()[0, 2] == vocab.char_id["楼"]
    ends = allowed(vocab, rule, at)
    assert "愁" in ends and "楼" not in ends and "人" not in ends  # 第十二部 平; 楼 used; 人 is 第六部
    assert all((cilin.PING, 12) in cilin.readings(ch) for ch in ends)
    # 平 is read in 第十一部 and, rarely, 第七部: no rhyme for the writer in either
    assert cilin.bus("平", cilin.PING) == {7, 11}
    zhegu = tunes.form("鹧鸪天")
    ends = allowed(vocab, TuneRhyme(vocab, zhegu), tune_slot(vocab, zhegu, ["屈指相思楚水边", "江南风月暮云"], 1, 6))
    assert "前" in ends and "平" not in ends
    # a set not begun yet is open, but only to its tone: line 5 (仄) takes no sure 平 character
    ends = allowed(vocab, rule, tune_slot(vocab, form, [*written, "愁", "玉阶空伫"], 4, 4))
    assert "立" not in ends and "夜" in ends and "天" not in ends  # 立 is 入声; 夜 去; 天 平


def test_a_tunes_fixed_tones_bind_where_the_tune_fixes_them(vocab: VocabMasks) -> None:
    form = tunes.form("菩萨蛮")
    assert form.fixed[0][1] == "平" and form.fixed[0][0] == "."
    rule = TuneTones(vocab, form)
    at_level = allowed(vocab, rule, tune_slot(vocab, form, ["平"], 0, 1))
    assert "山" in at_level and "月" not in at_level and "好" not in at_level
    assert len(allowed(vocab, rule, tune_slot(vocab, form, [""], 0, 0))) == len(vocab.tokens)  # free there
