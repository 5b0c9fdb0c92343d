"""mfai models by name: a training step per architecture with the network blocked, state_dict round trip,
settings validation and YAML-style settings."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any, NoReturn

import pytest
import torch
import yaml
from mfai.pytorch.models.unetrpp import EPA

from dlens.model.architectures import (
    ARCHITECTURES,
    FIXED_SHAPE,
    SMALL_SETTINGS,
    architecture_class,
    build_model,
    spatial_norm,
)

IN_CHANNELS, OUT_CHANNELS, BATCH = 30, 2, 2
SHAPE = (24, 32)  # tiny domain, padded by autopadding to what each architecture needs

torch.set_num_threads(2)


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any network access (socket connect, torch.hub weight download) raises."""

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise OSError("network access attempted during a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)


def test_architectures_and_small_settings_match() -> None:
    assert list(ARCHITECTURES) == ["UNet", "HalfUNet", "DeepLabV3Plus", "Segformer", "SwinUNetR", "UNetRPP"]
    assert set(SMALL_SETTINGS) == set(ARCHITECTURES)
    assert yaml.safe_load(yaml.safe_dump(SMALL_SETTINGS)) == SMALL_SETTINGS  # JSON/YAML-friendly


@pytest.mark.parametrize("architecture", list(ARCHITECTURES))
def test_training_step_offline_and_state_dict_round_trip(
    architecture: str, offline: None, tmp_path: Path
) -> None:
    with pytest.raises(OSError):  # the network really is blocked
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    torch.manual_seed(0)
    model = build_model(architecture, IN_CHANNELS, OUT_CHANNELS, SHAPE, SMALL_SETTINGS[architecture])
    assert type(model) is architecture_class(architecture)
    assert model.settings.autopad_enabled
    assert getattr(model.settings, "encoder_weights", False) is False

    x = torch.randn(BATCH, IN_CHANNELS, *SHAPE)
    target = torch.randn(BATCH, OUT_CHANNELS, *SHAPE)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    output = model(x)
    assert output.shape == (BATCH, OUT_CHANNELS, *SHAPE)
    loss = torch.nn.functional.mse_loss(output, target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)

    after = dict(model.named_parameters())
    trained = [name for name, p in after.items() if p.grad is not None and p.grad.abs().sum() > 0]
    assert trained, "no parameter received a gradient"
    assert [name for name in trained if torch.equal(before[name], after[name])] == []

    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    torch.manual_seed(1)
    restored = build_model(architecture, IN_CHANNELS, OUT_CHANNELS, SHAPE, SMALL_SETTINGS[architecture])
    restored.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    restored.eval()
    with torch.no_grad():
        torch.testing.assert_close(restored(x), model(x), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    ("architecture", "settings", "match"),
    [
        ("ResNet", {}, r"unknown architecture 'ResNet'; known: UNet, HalfUNet, DeepLabV3Plus, Segformer"),
        (
            "UNet",
            {"init_feature": 8, "depth": 3},
            r"unknown settings for UNet: depth, init_feature; valid: autopad_enabled, init_features$",
        ),
        ("DeepLabV3Plus", {"encoder_weights": True}, "pretrained weights would be downloaded at run time"),
    ],
)
def test_invalid_requests_raise(architecture: str, settings: dict, match: str, offline: None) -> None:
    with pytest.raises(ValueError, match=match):
        build_model(architecture, IN_CHANNELS, OUT_CHANNELS, SHAPE, settings)


def test_yaml_settings_lists_become_tuples(offline: None) -> None:
    settings = yaml.safe_load(
        "dims: [16, 32, 64, 128]\nheads: [1, 2, 4, 8]\nnum_layers: 1\ndecoder_dim: 32\n"
    )
    model = build_model("Segformer", IN_CHANNELS, OUT_CHANNELS, SHAPE, settings)
    assert model.settings.dims == (16, 32, 64, 128)
    assert isinstance(model.settings.heads, tuple)
    assert isinstance(settings["dims"], list)  # the caller's dict is left alone

    swin = {**SMALL_SETTINGS["SwinUNetR"], "norm_name": ["group", {"num_groups": 4}]}
    model = build_model("SwinUNetR", IN_CHANNELS, OUT_CHANNELS, SHAPE, yaml.safe_load(yaml.safe_dump(swin)))
    assert model.settings.norm_name == ("group", {"num_groups": 4})
    assert model.settings.depths == (1, 1, 1, 1)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, IN_CHANNELS, *SHAPE)).shape == (1, OUT_CHANNELS, *SHAPE)


def _instance_norms(model: torch.nn.Module) -> bool:
    """Whether the network normalises each sample over space in eval mode."""
    norms = (torch.nn.InstanceNorm1d, torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d)
    return any(isinstance(m, norms) and not m.track_running_stats for m in model.modules())


@pytest.mark.parametrize(
    ("architecture", "settings"),
    [(name, SMALL_SETTINGS[name]) for name in ARCHITECTURES]
    + [
        ("SwinUNetR", {**SMALL_SETTINGS["SwinUNetR"], "norm_name": "instance"}),
        (
            "SwinUNetR",
            {**SMALL_SETTINGS["SwinUNetR"], "norm_name": ["instance", {"track_running_stats": True}]},
        ),
    ],
)
def test_spatial_norm_agrees_with_the_built_network(architecture: str, settings: dict) -> None:
    """spatial_norm reads the settings alone: the built network has an instance norm exactly where it says
    (UNetRPP's take only the shape it is built for), at the network's own padding multiple, and fails in eval
    mode on the fields it refuses, only those."""
    model = build_model(architecture, IN_CHANNELS, OUT_CHANNELS, SHAPE, settings).eval()
    norm = spatial_norm(architecture, settings)
    assert (norm is not None) == (_instance_norms(model) and architecture not in FIXED_SHAPE)
    if norm is None:
        return
    _, padded = model.validate_input_shape(torch.Size([1, 1]))
    assert tuple(padded) == (norm.downsampling, norm.downsampling)
    d = norm.downsampling
    for shape in [(1, 1), (d, d), (d + 1, 1), (1, d + 1)]:  # the first two refused (asserted by the raise)
        with torch.no_grad():
            if norm.refusal(shape):
                with pytest.raises(ValueError, match="spatial element"):
                    model(torch.randn(1, IN_CHANNELS, *shape))
            else:
                assert model(torch.randn(1, IN_CHANNELS, *shape)).shape == (1, OUT_CHANNELS, *shape)


def test_autopad_defaults_on_but_an_explicit_value_wins() -> None:
    assert build_model("UNet", 1, 1, (16, 16), {"init_features": 4}).settings.autopad_enabled is True
    model = build_model("UNet", 1, 1, (16, 16), {"init_features": 4, "autopad_enabled": False})
    assert model.settings.autopad_enabled is False
    assert build_model("HalfUNet", 1, 1, (16, 16)).settings.num_filters == 64  # None: mfai's defaults


def test_unetrpp_attention_dropout_is_train_only() -> None:
    """mfai 9.0.1 passes the dropout rate to scaled_dot_product_attention in eval mode too; build_model fixes it."""
    torch.manual_seed(0)
    model = build_model("UNetRPP", IN_CHANNELS, OUT_CHANNELS, SHAPE, SMALL_SETTINGS["UNetRPP"])
    attention = [module for module in model.modules() if isinstance(module, EPA)]
    assert attention
    assert {module.attn_drop.p for module in attention} == {0.1}  # mfai's rate, still applied in training
    model.eval()
    assert {module.attn_drop.p for module in attention} == {0.0}
    x = torch.randn(BATCH, IN_CHANNELS, *SHAPE)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
