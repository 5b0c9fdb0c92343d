"""Training configs: the YAML files validate, and mistakes are errors that say what is wrong."""

from pathlib import Path

import pytest
import yaml

from dlens.train.config import load_config
from dlens.train.sweep import load_sweep

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "train"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_committed_configs_validate(path):
    config = load_config(path)
    assert config.name == path.stem


def write(tmp_path, change) -> Path:
    raw = yaml.safe_load((CONFIGS / "demo.yaml").read_text())
    change(raw)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["optim"].update(learning_rte=0.1), "learning_rte"),
        (lambda r: r["data"].update(species=["o3", "co"]), "unknown species ['co']"),
        (lambda r: r["data"]["test"].update(start="2025-07-12"), "the validation and test periods overlap"),
        (lambda r: r["model"].update(architecture="ResNet"), "architecture"),
        (lambda r: r["data"]["train"].update(end="2025-06-01"), "ends (2025-06-01) before it starts"),
        (lambda r: r["data"].update(levels=[500, 0]), "levels [500, 0]: expected distinct heights"),
        (lambda r: r["data"].update(levels=[0, 0]), "levels [0, 0]: expected distinct heights"),
        (lambda r: r["data"].update(levels=[]), "levels []: expected distinct heights"),
    ],
)
def test_mistakes_name_the_problem(tmp_path, change, message):
    with pytest.raises(ValueError, match=r"config\.yaml") as info:
        load_config(write(tmp_path, change))
    assert message in str(info.value)


@pytest.mark.parametrize("name", ["../demo", "a/b", "..", ".demo", "demo..1", "demo 1", ""])
def test_a_name_that_is_not_a_safe_path_component_is_refused(tmp_path, name):
    with pytest.raises(ValueError, match=r"config\.yaml") as info:
        load_config(write(tmp_path, lambda r: r.update(name=name)))
    assert f"name {name!r}: use letters, digits" in str(info.value)


def test_committed_sweeps_validate():
    for path in sorted((CONFIGS.parent / "tune").glob("*.yaml")):
        sweep, base = load_sweep(path)
        assert sweep.name and base.name and sweep.models
