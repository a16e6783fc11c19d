"""The 词林正韵 table, the tune templates learned from the Song ci and the checker reading them."""

from __future__ import annotations

import pytest

from poetgen.errors import PoetgenError
from poetgen.poems import cilin, tunes
from poetgen.poems.check import check_poem


def test_cilin_merges_level_and_oblique_groups_into_one_bu() -> None:
    assert cilin.bus("东") == cilin.bus("冬") == {1}  # 一東 and 二冬
    assert cilin.readings("动") == {(cilin.SHANGQU, 1)}  # 上聲一董 joins them
    assert cilin.bus("江") == cilin.bus("阳") == {2}
    assert cilin.bus("山") == cilin.bus("天") == {7}  # 刪 and 先


def test_cilin_splits_hui_jia_yuan_by_character() -> None:
    assert cilin.bus("梅") == {3} and cilin.bus("来") == {5}  # 灰: 三 and 五
    assert cilin.bus("街") == {5} and cilin.bus("花") == {10}  # 佳 with 五, 麻 is 十
    assert cilin.bus("门") == {6} and cilin.bus("言") == {7}  # 元: 六 and 七
    assert cilin.bus("话") == {10} and cilin.bus("外") == {5}  # 卦 and 泰, the 去 halves


def test_cilin_lists_the_rhymes_of_a_bu_by_tone() -> None:
    level = cilin.members(7, cilin.PING)
    assert {"山", "天", "言", "寒"} <= level and "门" not in level and "晚" not in level
    assert "晚" in cilin.members(7, cilin.SHANGQU) and "雪" in cilin.members(18, cilin.RU)
    assert not cilin.members(1, cilin.RU)


def test_cilin_ru_sheng_has_five_bu_of_its_own() -> None:
    assert cilin.readings("月") == {(cilin.RU, 18)}
    assert cilin.readings("石") == {(cilin.RU, 17)}
    assert cilin.bus("竹", cilin.RU) == {15} and cilin.bus("雪", cilin.RU) == {18}
    assert cilin.bu_name(19) == "第十九部" and cilin.bu_name(10) == "第十部" and cilin.bu_name(3) == "第三部"
    assert not cilin.readings("x")


def test_short_tunes_have_their_known_structure() -> None:
    assert tunes.form("浣溪沙").widths == (7, 7, 7, 7, 7, 7)
    assert tunes.form("浣溪沙").marks == "。。。，。。"
    assert tunes.form("鹧鸪天").widths == (7, 7, 7, 7, 3, 3, 7, 7, 7)
    assert tunes.form("菩萨蛮").widths == (7, 7, 5, 5, 5, 5, 5, 5)


def test_templates_know_where_a_tune_rhymes_and_in_which_tone() -> None:
    huanxisha = tunes.form("浣溪沙")
    assert huanxisha.rhyme_sets == ((0, 1, 2, 4, 5),)  # the 4th line (，) is the one that does not rhyme
    assert huanxisha.rhyme_tones == "平平平.平平"
    pusaman = tunes.form("菩萨蛮")  # it changes rhyme every couplet, 仄 then 平
    assert pusaman.rhyme_sets == ((0, 1), (2, 3), (4, 5), (6, 7))
    assert pusaman.rhyme_tones == "仄仄平平仄仄平平"
    assert set(tunes.form("念奴娇").rhyme_tones) == {".", cilin.RU}  # a 入声 tune
    xijiangyue = tunes.form("西江月")  # 平 and 仄 of one 部 in one set
    assert xijiangyue.rhyme_tones == ".平平仄.平平仄" and len(xijiangyue.rhyme_sets) == 1
    assert tunes.form("鹧鸪天").fixed[4] == "平仄仄"  # its first 3-character line is fixed


def test_long_tunes_keep_their_variants_with_shares() -> None:
    shuidiao = tunes.tune("水调歌头")
    assert len(shuidiao.variants) >= 3 and shuidiao.poems >= 600
    assert all(sum(f.widths) == 95 for f in shuidiao.variants)  # editors' line breaks, one length
    assert [f.variant for f in shuidiao.variants] == list(range(1, len(shuidiao.variants) + 1))
    assert shuidiao.variants[0].share >= shuidiao.variants[1].share >= 0.1
    with pytest.raises(PoetgenError, match="variant of 水调歌头 must be between 1 and"):
        tunes.form("水调歌头", 9)


def test_unknown_and_rare_tunes_are_refused_in_one_line() -> None:
    with pytest.raises(PoetgenError, match="unknown tune '浣沙溪'; nearest: 浣溪沙"):
        tunes.tune("浣沙溪")
    assert tunes.tune("鷓鴣天") is tunes.tune("鹧鸪天")  # a traditional name is the same tune
    assert tunes.is_tune("鷓鴣天") and tunes.is_tune("甘草子") and not tunes.is_tune("七律")
    with pytest.raises(PoetgenError, match=r"tune 甘草子 has too few poems .* 20 needed"):
        tunes.tune("甘草子")
    listed = {row["tune"]: row for row in tunes.listing()}
    assert listed["浣溪沙"]["poems"] >= 700 and listed["浣溪沙"]["variants"][0]["chars"] == 42
    assert all(row["poems"] >= 20 for row in listed.values())


# Real ci of the test split (the templates are learned from the training split).
REAL = {
    "浣溪沙": "青杏园林著酒香。佳人初试薄罗裳。柳丝无力燕飞忙。乍雨乍晴花自落，闲愁闲闷日偏长。为谁消瘦减容光。",
    "鹧鸪天": "已分江湖寄此生。长蓑短笠任阴晴。鸣桡细雨沧洲远，系舸斜阳画阁明。奇绝处，未忘情。几时还得去寻盟。"
              "江妃定许捐双佩，渔父何劳笑独醒。",
    "菩萨蛮": "愁人道酒能消解。元来酒是愁人害。对酒越思量。醉来还断肠。酒醒初梦破。梦破愁无那。干净不如休。"
              "休时只恁愁。",
    "水调歌头": "元日至人日，未有不阴时。新年叶气，无处人物不熙熙。万岁声从天下，一札恩随春到，光采动天鸡。寿域遍寰海，"
                "直过雪山西。忆曾预，宣玉册，捧金卮。如今万里，魂梦空绕五云飞。想见大庭宫馆，重起三山楼观，双指赭黄衣。"
                "此会古无有，何止古来稀。",
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_check_recognises_a_real_ci_by_its_structure(name: str) -> None:
    found = check_poem(REAL[name])
    assert found.form == name and found.scheme == "cilin" and found.passed(), found.rules
    assert all(r["ok"] is not False for r in found.ci["rhymes"]) and found.ci["fixed"]
    assert found.to_dict()["ci"]["tune"] == name


def test_check_reports_a_broken_ci() -> None:
    text = REAL["菩萨蛮"].replace("思量", "思去").replace("能消解", "能消愁")  # two rhymes and a tone broken
    found = check_poem(text)
    assert found.form == "菩萨蛮" and found.rules["form"] and not found.rules["rhyme"]
    broken = {r["line"] for r in found.ci["rhymes"] if r["ok"] is False}
    assert broken >= {1, 3}
    assert found.ci["sets"][1]["bu"] == "第二部"  # 肠 (阳) still names the set's 部; 去 (御) breaks it
    too_long = check_poem(REAL["浣溪沙"].replace("柳丝", "柳丝柳"), tune="浣溪沙")
    assert not too_long.rules["form"] and too_long.ci["tune"] == "浣溪沙"


def test_a_ci_shaped_as_a_lushi_is_told_by_its_marks() -> None:
    # 玉楼春 has the 七律's eight lines of seven, but its first line rhymes and closes with 。
    yulouchun = ("别后不知君远近。触目凄凉多少闷。渐行渐远渐无书，水阔鱼沉何处问。夜深风竹敲秋韵。万叶千声皆是恨。"
                 "故欹单枕梦中寻，梦又不成灯又烬。")
    found = check_poem(yulouchun)
    assert found.form == "玉楼春" and found.rules["rhyme"]
    lushi = ("风急天高猿啸哀，渚清沙白鸟飞回。无边落木萧萧下，不尽长江滚滚来。万里悲秋常作客，百年多病独登台。"
             "艰难苦恨繁杯酒，潦倒新停浊酒杯。")
    assert check_poem(lushi).form == "七律"
    assert check_poem(lushi.replace("，", "。")).form == "七律"  # every line closed with 。 fits no tune: still a shi


def test_check_keeps_shi_output_and_refuses_unknown_tunes() -> None:
    shi = check_poem("床前明月光，疑是地上霜。举头望明月，低头思故乡。").to_dict()
    assert shi["form"] == "五绝" and "ci" not in shi and shi["scheme"] == "pingshui"
    with pytest.raises(PoetgenError, match="nearest: 浣溪沙"):
        check_poem(REAL["浣溪沙"], tune="浣沙溪")
    with pytest.raises(PoetgenError, match="shi form"):
        check_poem(REAL["浣溪沙"], tune="七律")


def test_check_command_names_the_tune_and_each_verdict() -> None:
    import json

    from tests.cli_run import one_error_line, run

    found = json.loads(run("check", REAL["鹧鸪天"], "--json").stdout)
    assert found["form"] == "鹧鸪天" and found["ci"]["variant"] == 1 and found["passed"]
    text = run("check", REAL["菩萨蛮"].replace("思量", "思去")).stdout
    assert "form 菩萨蛮 (variant 1 of" in text and "第十二部" in text
    assert any("rhyme line 3 去 (平)" in line and "✗" in line for line in text.splitlines())
    one_error_line(run("check", "--form", "浣沙溪", REAL["浣溪沙"]), 2, "unknown tune '浣沙溪'; nearest: 浣溪沙")


def test_a_tune_written_in_either_tone_has_a_variant_for_each() -> None:
    level, oblique = tunes.tune("柳梢青").variants[:2]
    assert level.widths == oblique.widths and level.rhyme_tones[-1] == "平" and oblique.rhyme_tones[-1] == "入"
    # A real 入声 柳梢青 of the validation split: its closing tone picks the variant.
    text = "九天圆月。香尘碎玉，素涛翻雪。石乳香甘，松风汤嫩，一时三绝。清宵好尽欢娱，奈明日，扶头怎说。" \
           "整顿颓山，殷勤春露，馀甘齿颊。"
    found = check_poem(text)
    assert found.form == "柳梢青" and found.ci["variant"] == oblique.variant and found.rules["rhyme"]
    assert found.rhyme_group == "第十八部"
