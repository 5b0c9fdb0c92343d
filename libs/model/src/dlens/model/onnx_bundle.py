"""A bundle's `model.onnx` (`dlens-train export --onnx`) run with ONNX Runtime, without torch.

The graph is the EnsembleModel as `dlens.model.inference.ensemble` calls it, network and head: the assembled
inputs (batch, channels, height, width; `model_inputs`, in the card's `input_channels` order) → the
normalised ensemble (batch, species, height, width). It stops there: the fields in µg/m³ are
`np.expm1(z * log1p_std + log1p_mean).clip(0)` per species (`normalisation.json`; `Normaliser.inverse`).
The card's `onnx` entry records the file, the opset, the names and shapes, and the export's check.
"""

from __future__ import annotations

import numpy as np

from dlens.common.store import read_file

ONNX_FILE = "model.onnx"
#: The graph's input (assembled inputs) and output (normalised ensemble).
INPUT, OUTPUT = "inputs", "ensemble"


class OnnxEnsemble:
    """An ONNX export of a model on ONNX Runtime (CPU by default): assembled inputs → normalised ensemble."""

    def __init__(self, model: bytes, providers: tuple[str, ...] = ("CPUExecutionProvider",)):
        import onnxruntime  # here: bundle.py reads ONNX_FILE, and serve need not load ONNX Runtime

        self.session = onnxruntime.InferenceSession(model, providers=list(providers))

    @classmethod
    def from_bundle(cls, location: str) -> OnnxEnsemble:
        """The `model.onnx` of the bundle at `location` (a directory or s3:// prefix)."""
        return cls(read_file(location, ONNX_FILE))

    def __call__(self, inputs: np.ndarray) -> np.ndarray:
        """The normalised ensemble (batch, species, H, W) of assembled inputs (batch, channels, H, W)."""
        return self.session.run([OUTPUT], {INPUT: np.ascontiguousarray(inputs, dtype=np.float32)})[0]
