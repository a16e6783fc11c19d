"""What a vocabulary offers a poem: boolean masks over token ids (Chinese characters, tones,
rhyme-group membership), built once per (tokenizer, rhyme scheme) and cached."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from poetgen.checkpoint import Checkpoint
from poetgen.errors import PoetgenError
from poetgen.poems import prosody
from poetgen.verse import COMMA, ODD_LINE_MARKS, STOP, is_cjk

HEARD_SHARE = 0.1  # of a polyphonic rhyme character's Tang uses, for a group to count as heard


class VocabMasks:
    """Masks over the vocabulary (V,) and rhyme membership (G, V), for vectorised constraints.

    Only single-character tokens are written inside lines (with the default character tokenizer
    that is every token); ``char_id`` maps such a character to its id.
    """

    def __init__(self, ck: Checkpoint, scheme: str) -> None:
        rhymes = prosody.table(scheme)
        tokens = ck.tokenizer.tokens
        V = len(tokens)
        self.scheme = scheme
        self.tokens = tokens
        self.char_id = {t: i for i, t in enumerate(tokens) if i >= 4 and len(t) == 1}
        self.groups = rhymes.group_names()
        gindex = {g: i for i, g in enumerate(self.groups)}
        self.cjk = torch.zeros(V, dtype=torch.bool)
        self.oblique = torch.zeros(V, dtype=torch.bool)  # has a 仄 reading
        self.tone = torch.full((V,), -1, dtype=torch.long)  # 0: surely 平, 1: surely 仄, -1: both or unknown
        level = torch.zeros(len(self.groups), V, dtype=torch.bool)  # read 平 in group g
        member = torch.zeros(len(self.groups), V, dtype=torch.bool)  # in group g, any tone
        for ch, i in self.char_id.items():
            if not is_cjk(ch):
                continue
            self.cjk[i] = True
            tones = rhymes.tones(ch)
            self.oblique[i] = prosody.OBLIQUE in tones
            if len(tones) == 1:
                self.tone[i] = 0 if prosody.LEVEL in tones else 1
            for g in rhymes.level_groups(ch):
                level[gindex[g], i] = True
            for g in rhymes.groups(ch):
                member[gindex[g], i] = True
        self.level, self.member = level, member
        self.rhyme_level = _heard(level, self.char_id, gindex) if scheme == "pingshui" else level
        # Added at a 平仄 key slot: row 0 when 平 is wanted (sure-仄 characters out), 1 for 仄, 2 free.
        self.tone_bias = torch.zeros(3, V)
        self.tone_bias[0].masked_fill_(self.tone == 1, -math.inf)
        self.tone_bias[1].masked_fill_(self.tone == 0, -math.inf)
        self.level_f, self.member_f, self.rhyme_level_f = level.float(), member.float(), self.rhyme_level.float()
        if int(self.cjk.sum()) < 8 or COMMA not in self.char_id or STOP not in self.char_id:
            raise PoetgenError(f"{ck.path} cannot write poems: its vocabulary lacks Chinese characters or ，。 "
                               "(is it a names model?)")

    def on(self, device: torch.device) -> VocabMasks:
        """These masks with their tensors on ``device`` (cached; the CPU masks are ``self``)."""
        if device.type == "cpu":
            return self
        cache = self.__dict__.setdefault("_devices", {})
        if device not in cache:
            other = object.__new__(VocabMasks)
            other.__dict__.update({k: v.to(device) if isinstance(v, Tensor) else v
                                   for k, v in self.__dict__.items() if k != "_devices"})
            cache[device] = other
        return cache[device]

    def mark_id(self, mark: str) -> int:
        return self.char_id.get(mark, self.char_id[COMMA if mark in ODD_LINE_MARKS else STOP])


_VOCABS: dict[tuple[int, str], tuple[object, VocabMasks]] = {}


def _heard(level: Tensor, char_id: dict[str, int], gindex: dict[str, int]) -> Tensor:
    """``level`` where a character read 平 in several groups keeps only the groups a reader hears
    it in: those where Tang poets rhymed it at least ``HEARD_SHARE`` of the time (平 stays in 庚,
    not 先; 行 in 庚 and 阳). One never rhymed by them rhymes nowhere."""
    heard = level.clone()
    use = prosody.rhyme_use()
    for ch, i in char_id.items():
        if int(level[:, i].sum()) < 2:
            continue
        counts = use.get(ch, {})
        heard[:, i] = False
        for group, n in counts.items():
            if n >= HEARD_SHARE * sum(counts.values()):
                heard[gindex[group], i] = True
    return heard


def vocab_masks(ck: Checkpoint, scheme: str = "pingshui") -> VocabMasks:
    """Cached masks for this checkpoint's tokenizer (keyed by the tokenizer object's identity)."""
    key = (id(ck.tokenizer), scheme)
    hit = _VOCABS.get(key)
    if hit is not None and hit[0] is ck.tokenizer:
        return hit[1]
    if len(_VOCABS) >= 8:
        _VOCABS.clear()
    masks = VocabMasks(ck, scheme)
    _VOCABS[key] = (ck.tokenizer, masks)
    return masks
