"""`dlens-train export`: a registered model as a self-contained bundle (dlens.model.bundle), its
test scores taken from the newest verification report in the store that scored it against its own target."""

from __future__ import annotations

import json
from pathlib import Path

from dlens.common.store import list_directory, read_file
from dlens.model.bundle import write_bundle
from dlens.model.registry import load_model, resolve

REPORTS = "reports"


def report_scores(url: str, model_id: str, target: str = "analysis") -> list[dict]:
    """Per species: RMSE of dlens-<id>, the median and the weighted ENSEMBLE over the domain and every lead,
    from the newest report under `reports/` that scored the model against `target` (the one it was trained
    on; a report from before `--target` scored against the analysis); empty when none did."""
    product, found = f"dlens-{model_id}", []
    for report in list_directory(url, REPORTS):
        try:
            metrics = json.loads(read_file(url, f"{REPORTS}/{report}/metrics.json"))
        except FileNotFoundError:
            continue
        if metrics["meta"].get("target", {"name": "analysis"})["name"] != target:
            continue
        overall = {"lead_block": "all", "region": "domain", "season": "all", "lead": None}
        rmse = {
            (r["product"], r["species"]): r["rmse"]
            for r in metrics["continuous"]
            if all(r[k] == v for k, v in overall.items())
        }
        species = [sp for p, sp in rmse if p == product]
        if species:
            nan = float("nan")
            rows = [
                {"species": sp, "dlens": rmse[(product, sp)], "median": rmse.get(("median", sp), nan),
                 "weighted": rmse.get(("weighted", sp), nan), "report": f"{REPORTS}/{report}",
                 "period": {k: metrics["meta"]["period"][k] for k in ("start", "days")}}
                for sp in species
            ]  # fmt: skip
            found.append((metrics["meta"]["created"], rows))
    return max(found, key=lambda f: f[0])[1] if found else []


def export(url: str, model_id: str, out: Path) -> tuple[str, Path]:
    """Write the bundle of `model_id` (or latest) to `out`, which must not exist; return its id and path."""
    if out.exists():
        raise ValueError(f"{out} exists: give a new directory")
    entry = resolve(url, model_id)
    network = load_model(url, entry)
    scores = report_scores(url, entry.model_id, entry.card.get("target", "analysis"))
    write_bundle(entry, network.state_dict(), out, scores)
    return entry.model_id, out
