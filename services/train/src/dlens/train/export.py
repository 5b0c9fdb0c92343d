"""`dlens-train export`: a registered model as a self-contained bundle (dlens.model.bundle), its
test scores taken from the newest verification report in the store that scored it against its own target;
with `--onnx` its `model.onnx` too (dlens.model.onnx_bundle), checked against torch with ONNX Runtime."""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import torch

from dlens.common.reader import StoreReader
from dlens.common.store import list_directory, read_file
from dlens.model.architectures import ARCHITECTURES, architecture_class
from dlens.model.bundle import write_bundle
from dlens.model.head import EnsembleModel
from dlens.model.inference import model_inputs
from dlens.model.onnx_bundle import INPUT, ONNX_FILE, OUTPUT, OnnxEnsemble
from dlens.model.registry import ModelEntry, load_model, resolve
from dlens.model.static import static_fields
from dlens.train.predict import store_predictors

REPORTS = "reports"
#: The ONNX opset of `model.onnx`: 17, the first with LayerNormalization as one operator (Segformer's).
OPSET = 17
#: The export's check: max |ONNX Runtime − torch| <= TOLERANCE × max(1, std of torch's output).
TOLERANCE = 1e-4


def report_scores(
    url: str, model_id: str, target: str = "analysis", levels: tuple[int, ...] = (0,)
) -> list[dict]:
    """Per species and level of the model (`levels`, metres): RMSE of dlens-<id>, the median and the weighted
    ENSEMBLE over the domain and every lead, from the newest report under `reports/` that scored the model
    against `target` (the one it was trained on; a report from before `--target` scored against the
    analysis); empty when none did."""
    product, found = f"dlens-{model_id}", []
    for report in list_directory(url, REPORTS):
        try:
            metrics = json.loads(read_file(url, f"{REPORTS}/{report}/metrics.json"))
        except FileNotFoundError:
            continue
        if metrics["meta"].get("target", {"name": "analysis"})["name"] != target:
            continue
        overall = {"lead_block": "all", "region": "domain", "season": "all", "lead": None}
        rmse = {  # a report from before the levels' rows scored level 0
            (r["product"], r["species"], r.get("level", 0)): r["rmse"]
            for r in metrics["continuous"]
            if all(r[k] == v for k, v in overall.items())
        }
        scored = [(sp, level) for p, sp, level in rmse if p == product and level in levels]
        if scored:
            nan = float("nan")
            rows = [
                {"species": sp, "level": level, "dlens": rmse[(product, sp, level)],
                 "median": rmse.get(("median", sp, level), nan),
                 "weighted": rmse.get(("weighted", sp, level), nan), "report": f"{REPORTS}/{report}",
                 "period": {k: metrics["meta"]["period"][k] for k in ("start", "days")}}
                for sp, level in scored
            ]  # fmt: skip
            found.append((metrics["meta"]["created"], rows))
    return max(found, key=lambda f: f[0])[1] if found else []


def export(url: str, model_id: str, out: Path, onnx: bool = False) -> tuple[str, Path]:
    """Write the bundle of `model_id` (or latest) to `out`, which must not exist; return its id and path.
    With `onnx`, the bundle holds `model.onnx` too, checked against torch (`export_onnx`); a model mfai does
    not export is refused (ValueError) and a failed export or check raises OnnxExportError, before anything
    is written."""
    if out.exists():
        raise ValueError(f"{out} exists: give a new directory")
    entry = resolve(url, model_id)
    if onnx:
        check_exportable(entry)
    network = load_model(url, entry)
    scores = report_scores(url, entry.model_id, entry.card.get("target", "analysis"), entry.levels)
    exported = export_onnx(url, entry, network) if onnx else None
    write_bundle(entry, network.state_dict(), out, scores, exported)
    return entry.model_id, out


class OnnxExportError(RuntimeError):
    """torch did not export the model to ONNX, or ONNX Runtime's output differs from torch's."""


def onnx_architectures() -> list[str]:
    """The architectures whose mfai class says it exports to ONNX (`onnx_supported`)."""
    return [name for name in ARCHITECTURES if architecture_class(name).onnx_supported]


def check_exportable(entry: ModelEntry) -> None:
    """ValueError naming the architecture and the exportable ones unless mfai exports the model's."""
    architecture = entry.card["config"]["model"]["architecture"]
    if not architecture_class(architecture).onnx_supported:
        raise ValueError(
            f"--onnx: model {entry.model_id} is a {architecture}, which mfai does not export to ONNX "
            f"(onnx_supported = False); exportable: {', '.join(sorted(onnx_architectures()))}"
        )


class PaddedToMultiple(torch.nn.Module):
    """The model with mfai's autopadding in traceable arithmetic: the inputs padded with zeros, centred, to
    the next multiple of `multiple` (`mfai.pytorch.padding.pad_batch`), the output cropped back. The tracer
    records mfai's own padding, computed in Python integers, as constants of the example's shape, a graph
    that fails at other sizes; the backbone fed a multiple pads nothing, and the graph takes any size."""

    def __init__(self, model: torch.nn.Module, multiple: tuple[int, int]):
        super().__init__()
        self.model, self.multiple = model, multiple

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        (h, w), (mh, mw) = inputs.shape[-2:], self.multiple
        dh, dw = (mh - h % mh) % mh, (mw - w % mw) % mw
        top, left = dh // 2, dw // 2
        out = self.model(torch.nn.functional.pad(inputs, (left, dw - left, top, dh - top)))
        return out[..., top : top + h, left : left + w]


def export_onnx(url: str, entry: ModelEntry, network: EnsembleModel) -> tuple[bytes, dict]:
    """`model.onnx` of `network` (the EnsembleModel, network and head: `dlens.model.onnx_bundle`) and the
    card's record of it. Exported with torch's TorchScript exporter at opset OPSET, the batch dynamic and
    the height and width too unless the architecture takes one shape (the card's); then ONNX Runtime and
    torch run on the same inputs from the store (`check_inputs`), and on a `quarter` of their first sample
    where the height and width are dynamic: OnnxExportError if max |ONNX Runtime − torch| > TOLERANCE × max(1,
    std of torch's output)."""
    inputs, source = check_inputs(url, entry)
    dynamic = entry.fixed_shape is None
    settings = getattr(network.backbone, "settings", None)
    graph: torch.nn.Module = network
    if dynamic and getattr(settings, "autopad_enabled", False):
        multiple = tuple(network.backbone.validate_input_shape(torch.Size([1, 1]))[1])
        graph = PaddedToMultiple(network, multiple).eval()  # eval: the exporter restores the mode it finds
    axes = {0: "batch", 2: "height", 3: "width"} if dynamic else {0: "batch"}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's doubts on mfai's shape arithmetic: the check rules
            torch.onnx.export(
                graph, (torch.from_numpy(inputs),), buffer, dynamo=False, opset_version=OPSET,
                input_names=[INPUT], output_names=[OUTPUT], dynamic_axes={INPUT: axes, OUTPUT: axes},
            )  # fmt: skip
        model = buffer.getvalue()
        batches = [inputs, quarter(inputs[:1])] if dynamic else [inputs]
        difference, tolerance = compare(network, OnnxEnsemble(model), batches)
    except Exception as exc:  # the exporter's and ONNX Runtime's errors, in one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise OnnxExportError(
            f"ONNX export of model {entry.model_id} failed, no bundle written: {type(exc).__name__}: {first}"
        ) from exc
    if not difference <= tolerance:  # NaN fails too
        shapes = " and ".join(str(b.shape) for b in batches)
        raise OnnxExportError(
            f"ONNX export of model {entry.model_id} failed its check, no bundle written: ONNX Runtime "
            f"differs from torch by {difference:.3g} (max |difference| of the normalised ensemble, inputs "
            f"{shapes} from {source}), over the tolerance {tolerance:.3g}"
        )
    channels, species = inputs.shape[1], len(entry.species)
    height, width = ("height", "width") if dynamic else tuple(entry.card["input_shape"])
    card = {
        "file": ONNX_FILE,
        "opset": OPSET,
        "exporter": f"torch.onnx.export (TorchScript, dynamo=False), torch {torch.__version__}",
        "input": {"name": INPUT, "shape": ["batch", channels, height, width],
                  "what": "assembled inputs (dlens.model.inference.model_inputs), input_channels' order"},
        "output": {"name": OUTPUT, "shape": ["batch", species, height, width],
                   "what": "the normalised ensemble, species' order; µg/m³: normalisation.json's inverse"},
        "check": {"inputs": source, "shapes": [list(b.shape) for b in batches],
                  "runtime": f"onnxruntime {onnxruntime.__version__}, CPUExecutionProvider",
                  "max_abs_difference": difference, "tolerance": tolerance},
    }  # fmt: skip
    return model, card


def quarter(inputs: np.ndarray) -> np.ndarray:
    """The north-west (H // 2 + 1, W // 2 + 1) of the inputs, a sub-domain as serve takes them: on a grid of
    more than two of the backbone's multiples, a field that mfai pads to another multiple than the whole
    grid's, where a graph with the grid's padding baked in goes wrong."""
    h, w = inputs.shape[-2:]
    return inputs[..., : h // 2 + 1, : w // 2 + 1]


def compare(network: EnsembleModel, onnx: OnnxEnsemble, batches: list[np.ndarray]) -> tuple[float, float]:
    """max |ONNX Runtime − torch| over the batches, and the tolerance: TOLERANCE × max(1, std of torch's
    output on the first); NaN where the shapes differ or a value is not finite."""
    differences, scales = [], []
    for inputs in batches:
        with torch.no_grad():
            expected = network(torch.from_numpy(inputs)).numpy()
        got = onnx(inputs)
        scales.append(float(np.std(expected)))
        differences.append(float(np.abs(got - expected).max()) if got.shape == expected.shape else np.nan)
    return float(np.max(differences)), TOLERANCE * max(1.0, scales[0])


def check_inputs(url: str, entry: ModelEntry, leads: int = 2) -> tuple[np.ndarray, str]:
    """Assembled inputs (batch, C, H, W) for the check and what they are: the first `leads` leads of the
    newest of the store's last complete runs whose predictors the model finds there (`model_inputs`, as
    predict builds them); else seeded random inputs of the card's shape."""
    reader = StoreReader(url)
    batch = list(reader.spec.leads[:leads])
    fixed = entry.fixed_shape
    runs = [] if fixed and tuple(reader.spec.domain.shape) != fixed else reader.complete_runs()[-3:]
    for run in reversed(runs):
        try:
            encoded = np.stack([store_predictors(reader, entry, run, lead) for lead in batch])
        except ValueError:  # a predictor the store lacks for that run
            continue
        members = np.stack(
            [np.stack([reader.members(sp, run, lead)[:, 0] for sp in entry.species]) for lead in batch]
        )
        valid = [run + np.timedelta64(lead, "h") for lead in batch]
        static = static_fields(reader, entry.static_names)
        inputs, _ = model_inputs(
            members, entry.species, entry.normaliser, static, batch, valid, encoded=encoded,
            quantiles=entry.predictors.statistics_quantiles,
        )  # fmt: skip
        return inputs.numpy(), f"run {run}, leads {', '.join(map(str, batch))} h of the store"
    shape = (leads, len(entry.card["input_channels"]), *entry.card["input_shape"])
    inputs = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
    return inputs, "seeded random inputs (no complete run in the store with the model's predictors)"
