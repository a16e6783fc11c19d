"""Checkpoints are data, never code: hostile and damaged files are refused with one line."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from poetgen.checkpoint import load_checkpoint, read_header, save_checkpoint
from poetgen.cli import app
from poetgen.errors import PoetgenError
from poetgen.model import ModelConfig
from poetgen.networks import build_model
from poetgen.vocab import CharVocab

RUNNER = CliRunner()


class Marker:
    """Unpickling this object creates a file: proof that code ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path(self.path).touch, ())


def small_checkpoint(path: Path, **config) -> Path:
    vocab = CharVocab.build(["白日依山尽，黄河入海流。"])
    cfg = ModelConfig(vocab_size=len(vocab), embed=8, hidden=8, layers=1, **config)
    model = build_model(cfg)
    meta = {"config": cfg.to_dict(), "tokenizer": vocab.to_dict(), "categories": [],
            "corpus": {"name": "tang", "fingerprint": "x", "script": "simplified"}}
    save_checkpoint(path, model, meta, seen=torch.tensor([1, 2], dtype=torch.int64))
    return path


def test_round_trip_keeps_weights_vocab_and_tied_embeddings(tmp_path: Path):
    path = small_checkpoint(tmp_path / "a.safetensors", tie=True)
    ck = load_checkpoint(path)
    assert ck.config.tie and ck.model.head.weight.data_ptr() == ck.model.embed.weight.data_ptr()
    assert ck.tokenizer.decode(ck.tokenizer.encode("白日")) == "白日"
    assert ck.seen == frozenset({1, 2})


def test_pickle_never_executes(tmp_path: Path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps(Marker(str(marker))))
    torch_style = tmp_path / "model.pt"
    torch.save({"x": Marker(str(marker))}, torch_style)
    for path in (evil, torch_style):
        with pytest.raises(PoetgenError, match="is not a poetgen checkpoint"):
            load_checkpoint(path)
        for command in (["write", "青山"], ["names", "--lang", "Russian"], ["classify", "Hou"], ["score", "-"],
                        ["eval"]):
            result = RUNNER.invoke(app, [*command, "--checkpoint", str(path)], input="白日\n")
            assert result.exit_code == 2, (command, result.output)
            assert "not a poetgen checkpoint" in result.output
            assert "Traceback" not in result.output
    assert not marker.exists()


def test_truncated_file_is_refused(tmp_path: Path):
    path = small_checkpoint(tmp_path / "a.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoetgenError, match="not a poetgen checkpoint"):
        load_checkpoint(path)


def rewrite_metadata(path: Path, change) -> None:
    """Edit the JSON header of a safetensors file in place (what a tamperer would do)."""
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    meta = json.loads(header["__metadata__"]["poetgen"])
    change(meta)
    header["__metadata__"]["poetgen"] = json.dumps(meta)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + size :])


def test_metadata_that_does_not_match_the_weights_is_refused(tmp_path: Path):
    path = small_checkpoint(tmp_path / "a.safetensors")
    rewrite_metadata(path, lambda m: m["tokenizer"]["tokens"].append("多"))
    with pytest.raises(PoetgenError, match="vocabulary has"):
        load_checkpoint(path)
    path = small_checkpoint(tmp_path / "b.safetensors")
    rewrite_metadata(path, lambda m: m["config"].update(model="gru"))
    with pytest.raises(PoetgenError, match="weights do not match"):
        load_checkpoint(path)
    path = small_checkpoint(tmp_path / "c.safetensors")
    rewrite_metadata(path, lambda m: m.update(format="something-else"))
    with pytest.raises(PoetgenError, match="not a poetgen checkpoint"):
        read_header(path)


def test_a_crash_mid_write_leaves_the_old_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = small_checkpoint(tmp_path / "a.safetensors")
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("poetgen.checkpoint.write_safetensors", disk_full)
    with pytest.raises(PoetgenError, match="No space left"):
        small_checkpoint(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.safetensors"]  # no temp file left behind


def test_wrong_kind_of_model_for_the_command(tmp_path: Path):
    path = small_checkpoint(tmp_path / "poem.safetensors")
    result = RUNNER.invoke(app, ["classify", "Hou", "--checkpoint", str(path)])
    assert result.exit_code == 2 and "needs a names classifier" in result.output
