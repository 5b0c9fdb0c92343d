"""Self-contained model bundles: what `dlens-train export` writes and `dlens-serve run --bundle` loads.

A bundle is a directory (local or s3://) that needs no store registry:

    weights.safetensors   the state_dict as safetensors (no code runs on load)
    model.json            the card of the registry (config, normalisation, channels, shape, periods,
                          validation scores) plus the test scores found in the store's reports
    config.yaml           the training config, as a person would edit it
    normalisation.json    the per-species log1p mean and standard deviation of the inputs
    README.md             the model card: what it does, its data, its scores, its intended use and limits
    model.onnx            with `dlens-train export --onnx`: the network and its head for ONNX Runtime
                          (dlens.model.onnx_bundle); the card's `onnx` records it and its check
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml
from safetensors.torch import save_file

from dlens.common.species import SPECIES
from dlens.common.store import read_file
from dlens.model.onnx_bundle import ONNX_FILE
from dlens.model.registry import BUNDLE_WEIGHTS as WEIGHTS
from dlens.model.registry import ModelEntry, read_card

CARD = "model.json"
VALIDATION = {"val_loss": "loss", "val_ratio": "RMSE / median RMSE"}
FILES = (WEIGHTS, CARD, "config.yaml", "normalisation.json", "README.md")
#: How the model card names each training target (`data.target`).
TARGET_NAMES = {
    "analysis": "CAMS analysis",
    "interim": "CAMS interim reanalysis",
    "validated": "CAMS validated reanalysis",
}


def write_bundle(
    entry: ModelEntry,
    state_dict: dict[str, torch.Tensor],
    out: Path,
    test: list[dict],
    onnx: tuple[bytes, dict] | None = None,
) -> Path:
    """Write the bundle of `entry` into the new directory `out`; `test`: its test scores (may be empty);
    `onnx`: `model.onnx` and the card's record of it (None: no ONNX file)."""
    out.mkdir(parents=True, exist_ok=False)
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in state_dict.items()}
    save_file(tensors, str(out / WEIGHTS), metadata={"model_id": entry.model_id})
    card = {**entry.card, "test_scores": test}
    if onnx is not None:
        (out / ONNX_FILE).write_bytes(onnx[0])
        card["onnx"] = onnx[1]
    (out / "config.yaml").write_text(yaml.safe_dump(entry.card["config"], sort_keys=False))
    (out / "normalisation.json").write_text(json.dumps(entry.card["normaliser"], indent=2))
    (out / "README.md").write_text(model_card(card))
    (out / CARD).write_text(json.dumps(card, indent=2))  # last: `read_bundle` reads the card first
    return out


def read_bundle(location: str) -> ModelEntry:
    """The entry of the bundle at `location` (a directory or s3:// prefix); its weights load from there."""
    card = read_card(read_file(location, CARD))
    return ModelEntry(card["id"], card, bundle=location)


def period_text(scores: list[dict]) -> str:
    period = scores[0].get("period", {})
    return f"{period.get('days', '?')} runs from {period.get('start', '?')}"


def validation_line(validation: dict) -> str:
    """`Validation (the best epoch, 7): loss 0.7052, RMSE / median RMSE 0.8409.` from what the card has."""
    epoch = f" (the best epoch, {validation['epoch']})" if "epoch" in validation else ""
    scores = ", ".join(f"{label} {validation[k]:.4f}" for k, label in VALIDATION.items() if k in validation)
    return f"Validation{epoch}: {scores}."


def shape_text(card: dict) -> str:
    """The fields the model trained on: the grid, or patches of the grid (`data.patches`)."""
    height, width = card["input_shape"]
    patches = card["config"]["data"].get("patches")
    if patches:
        per_sample = patches["per_sample"]
        return f"trained on {height} × {width} patches of the grid ({per_sample} per sample read), run on all"
    return f"on a {height} × {width} grid"


def predictors_text(card: dict) -> str:
    """`meteo, zenith (their channels and normalisation: `predictors` in model.json)`, or `none`."""
    enabled = card.get("predictors", {}).get("enabled", [])
    if not enabled:
        return "none"
    return f"{', '.join(enabled)} (their channels and normalisation: `predictors` in `model.json`)"


def level_text(levels: list[int]) -> str:
    """`surface`, `500 m` or `0 and 500 m` (the members read together, as channels)."""
    if levels == [0]:
        return "surface"
    if len(levels) == 1:
        return f"{levels[0]} m"
    return f"{', '.join(map(str, levels[:-1]))} and {levels[-1]} m, read together,"


def level_cell(row: dict) -> str:
    """` 500 |`: a test-score row's level cell (a row from before the levels: 0)."""
    return f" {row.get('level', 0)} |"


def model_card(card: dict) -> str:
    """The bundle's README: a model card for the people who will use it."""
    config, periods, validation = card["config"], card["periods"], card["validation"]
    species = ", ".join(f"{s} ({SPECIES[s].long_name})" for s in config["data"]["species"])
    levels = list(config["data"].get("levels", [0]))  # cards before data.levels: the surface
    target = TARGET_NAMES[config["data"].get("target", "analysis")]  # cards before data.target: the analysis
    lines = [
        f"# DL-ENS model `{card['id']}`",
        "",
        f"A Deep Learning ENSEMBLE of the CAMS Regional air-quality forecasts: a {card['architecture']} "
        f"({config['model']['head']} head) that combines the member forecasts of {species} into one field "
        f"per species, lead and grid point, trained against the {target}. Created {card['created']} "
        f"with dlens-train `{card.get('code_version', '?')}`.",
        "",
        "## Intended use",
        "",
        f"Post-processing the 11 CAMS Regional members ({level_text(levels)} concentrations, µg/m³) into "
        "a sharper ensemble forecast than their median, for the species listed, over the grid and lead times "
        "it was trained on, run by run as the members arrive: it was trained with member dropout "
        f"(p = {config['data']['member_dropout']}) and takes any subset of members, more members giving "
        "better fields. Not for other species, other levels, other grids or resolutions, "
        f"or as an analysis: it forecasts what the {target} will say, with its errors.",
        "",
        "## Data",
        "",
        f"- Input: {len(card['input_channels'])} channels "
        f"(`{', '.join(card['input_channels'][:6])}`, …; `model.json` lists them), {shape_text(card)}.",
        *(f"- {name}: runs {p['start']} to {p['end']}" for name, p in periods.items()),
        "- Normalisation: `normalisation.json` (log1p mean and standard deviation per species).",
        f"- Phase-two predictors: {predictors_text(card)}.",
        "",
        "## Scores",
        "",
        validation_line(validation),
        "",
    ]  # fmt: skip
    if card["test_scores"]:
        aloft = levels != [0]  # a level column where the model is not the surface's
        lines += [
            f"Test period ({period_text(card['test_scores'])}), RMSE (µg/m³) over the domain and every lead, "
            "from the store's verification report:",
            "",
            f"| species |{' level (m) |' if aloft else ''} DL-ENS | Median ENSEMBLE | Weighted ENSEMBLE |",
            f"| --- |{' ---: |' if aloft else ''} ---: | ---: | ---: |",
            *(
                f"| {r['species']} |{level_cell(r) if aloft else ''} {r['dlens']:.3f} | {r['median']:.3f} | "
                f"{r['weighted']:.3f} |"
                for r in card["test_scores"]
            ),
        ]
    else:
        lines.append("Test period: not evaluated yet (`dlens-evaluate --products dlens-<id>` scores it).")
    lines += [
        "",
        "## Use",
        "",
        "```bash",
        "dlens-serve run --store <store with the members> --bundle <this directory>",
        "```",
        "",
        "The weights are safetensors; `dlens.model.bundle.read_bundle` and "
        "`dlens.model.registry.load_model` load them in Python.",
        "",
    ]
    if "onnx" in card:
        onnx, check = card["onnx"], card["onnx"]["check"]
        lines += [
            f"`{onnx['file']}` (ONNX opset {onnx['opset']}) is the network with its head, for ONNX Runtime "
            f"without torch: input `{onnx['input']['name']}` {_shape(onnx['input']['shape'])}, the assembled "
            f"inputs in `input_channels`' order; output `{onnx['output']['name']}` "
            f"{_shape(onnx['output']['shape'])}, the normalised ensemble (`normalisation.json` gives µg/m³). "
            f"ONNX Runtime gave torch's output within {check['max_abs_difference']:.2g} on "
            f"{check['inputs']} (tolerance {check['tolerance']:.2g}); "
            "`dlens.model.onnx_bundle.OnnxEnsemble` runs it.",
            "",
        ]
    return "\n".join(lines)


def _shape(shape: list) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"
