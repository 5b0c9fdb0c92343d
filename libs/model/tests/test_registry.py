"""Registry entries and bundles: the card, which marks an entry complete, is written after every other file,
and a model id that is not a safe path component is refused before anything is written."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest
import torch

from dlens.common.store import read_file, write_file
from dlens.model.bundle import CARD, FILES, write_bundle
from dlens.model.registry import MODELS, ModelEntry, UnknownModelError, entries, resolve, write_entry

STATE = {"weight": torch.arange(6.0).reshape(2, 3)}


class BrokenOff(Exception):
    """A publish interrupted when its card is serialised."""


class Probe(dict):
    """A card value that, when the card is serialised, records what `look` sees then and breaks off."""

    def __init__(self, look: Callable[[], object]) -> None:
        super().__init__(probe=1)
        self.look, self.seen = look, None

    def items(self):
        self.seen = self.look()
        raise BrokenOff


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> str:
    return str(tmp_path / "store") if request.param == "local" else request.getfixturevalue("s3_bucket")


def test_an_entry_broken_off_before_its_card_is_not_listed(store):
    def look() -> tuple[list[str], dict]:
        weights = read_file(store, f"{MODELS}/m-1/weights.pt")
        return [e.model_id for e in entries(store)], torch.load(io.BytesIO(weights), weights_only=True)

    probe = Probe(look)
    with pytest.raises(BrokenOff):
        write_entry(store, "m-1", {"created": "2025-07-01T00:00:00", "validation": probe}, STATE)
    listed, weights = probe.seen
    assert listed == [] and torch.equal(weights["weight"], STATE["weight"])  # weights stored, no card yet
    assert entries(store) == []
    with pytest.raises(UnknownModelError):
        resolve(store, "latest")


@pytest.mark.parametrize("model_id", ["../m-1", "a/b", "..", ".m", "m..1", "m 1", ""])
def test_an_unsafe_model_id_is_refused_before_anything_is_written(tmp_path, model_id):
    with pytest.raises(ValueError, match="model id"):
        write_entry(str(tmp_path / "store"), model_id, {"created": "2025-07-01T00:00:00"}, STATE)
    assert list(tmp_path.iterdir()) == []


ONNX_RECORD = {
    "file": "model.onnx", "opset": 17, "input": {"name": "inputs", "shape": ["batch", 1, "height", "width"]},
    "output": {"name": "ensemble", "shape": ["batch", 1, "height", "width"]},
    "check": {"inputs": "seeded random inputs", "max_abs_difference": 1e-7, "tolerance": 1e-4},
}  # fmt: skip


@pytest.mark.parametrize("onnx", [None, (b"onnx", ONNX_RECORD)], ids=["weights", "weights-and-onnx"])
def test_a_bundle_writes_its_card_last(tmp_path, onnx):
    out = tmp_path / "bundle"
    probe = Probe(lambda: sorted(p.name for p in out.iterdir()))
    card = {
        "id": "m-1", "created": "2025-07-01T00:00:00", "architecture": "UNet", "code_version": "0",
        "config": {"data": {"species": ["o3"], "member_dropout": 0.15}, "model": {"head": "mixture"}},
        "input_shape": [4, 4], "input_channels": ["o3:member0"], "validation": probe,
        "periods": {"test": {"start": "2025-07-01", "end": "2025-07-02"}},
        "normaliser": {"log1p_mean": {"o3": 3.5}, "log1p_std": {"o3": 0.6}},
    }  # fmt: skip
    with pytest.raises(BrokenOff):
        write_bundle(ModelEntry("m-1", card), STATE, out, [], onnx)
    assert probe.seen == sorted([f for f in FILES if f != CARD] + (["model.onnx"] if onnx else []))
    assert not (out / CARD).exists()


@pytest.mark.parametrize("card", [b'{"created": "2025-07-0', b"\xff\xfe", b"[1, 2]", b'{"id": "m-2"}'])
def test_a_malformed_card_is_left_out_with_a_warning(tmp_path, caplog, card):
    """A card that is not JSON, not UTF-8 or not a card: the other entries are listed, a warning names it."""
    store = str(tmp_path / "store")
    write_entry(store, "m-1", {"created": "2025-07-01T00:00:00"}, STATE)
    write_file(store, f"{MODELS}/m-2/model.json", card)
    with caplog.at_level(logging.WARNING, logger="dlens.model.registry"):
        assert [e.model_id for e in entries(store)] == ["m-1"]
    assert "m-2" in caplog.text and "malformed" in caplog.text
