"""The 词林正韵 table, the tune templates learned from the Song ci and the checker reading them."""

from __future__ import annotations

from poetgen.poems import cilin


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


def test_cilin_ru_sheng_has_five_bu_of_its_own() -> None:
    assert cilin.readings("月") == {(cilin.RU, 18)}
    assert cilin.readings("石") == {(cilin.RU, 17)}
    assert cilin.bus("竹", cilin.RU) == {15} and cilin.bus("雪", cilin.RU) == {18}
    assert cilin.bu_name(19) == "第十九部" and cilin.bu_name(10) == "第十部" and cilin.bu_name(3) == "第三部"
    assert not cilin.readings("x")
