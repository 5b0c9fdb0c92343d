"""The metrics dict as the report reads it: product roles and order, tidy frames, JSON-safe values."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

CONTINUOUS_SCORES = ("n", "rmse", "mae", "bias", "r", "mnmb", "fge")
CATEGORICAL = ("hits", "misses", "false_alarms", "correct_negatives", "pod", "far", "csi")
SIGNIFICANCE = ("rmse", "rmse_reference", "difference", "ci_low", "ci_high")
#: Scores newer than some metrics.json files: shown where present, never added as empty columns.
LATER_SCORES = ("variance_ratio", "rmse_top5", "bias_top5", "sedi", "fss", "fss_window", "p_value", "p_holm",
                "skill_median", "skill_persistence", "skill_climatology", "station_count")  # fmt: skip
#: Columns read as floats (NaN where missing); any other column is read as text.
NUMERIC = frozenset(
    ("lead", "level", "threshold", *CONTINUOUS_SCORES, *CATEGORICAL, *SIGNIFICANCE, *LATER_SCORES)
)


def json_ready(value: Any) -> Any:
    """A copy of `value` that `json.dump(allow_nan=False)` accepts: NaN/inf become None, numpy → Python."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | np.ndarray):
        return [json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def frame(records: Any, columns: tuple[str, ...]) -> pd.DataFrame:
    """Records (a list of flat dicts) as a DataFrame with at least `columns`; numbers as floats."""
    df = pd.DataFrame(list(records) if isinstance(records, list | tuple) else [])
    for col in columns:
        if col not in df:
            df[col] = np.nan
    for col in df.columns:
        if col in NUMERIC:
            df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
        else:
            df[col] = df[col].map(lambda v: None if v is None else str(v)).astype(object)
    return df


@dataclass
class Context:
    """What every part of the report needs to know about the metrics it shows."""

    meta: dict[str, Any]
    products: list[str]
    members: list[str]
    reference: str
    species: list[str]
    blocks: list[str]
    regions: dict[str, dict[str, Any]]
    seasons: list[str]
    level: float | None
    units: str
    continuous: pd.DataFrame
    exceedance: pd.DataFrame
    significance: pd.DataFrame
    mda8: pd.DataFrame
    stations: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def role(self, product: str) -> str:
        """'reference', 'dlens', 'member' or 'baseline'."""
        return product_role(product, self.reference, self.members)

    @property
    def compared(self) -> list[str]:
        """Non-member products other than the reference: those the scorecard and gain maps show."""
        return [p for p in self.products if self.role(p) in ("baseline", "dlens")]


_ROLE_ORDER = {"reference": 0, "dlens": 1, "baseline": 2, "member": 3}


def product_role(product: str, reference: str, members: list[str]) -> str:
    """'reference', 'member', 'dlens' (a ``dlens-*`` product) or 'baseline' (any other product)."""
    if product == reference:
        return "reference"
    if product in members:
        return "member"
    return "dlens" if product.lower().startswith("dlens") else "baseline"


def _union(*lists: Any) -> list[str]:
    out: list[str] = []
    for items in lists:
        for item in items if isinstance(items, list | tuple) else []:
            if item is not None and str(item) not in out:
                out.append(str(item))
    return out


def _values(df: pd.DataFrame, col: str) -> list[str]:
    return [str(v) for v in df[col].dropna().unique()] if col in df else []


def _records(value: Any) -> list[dict]:
    """The dict records of a metrics.json table (none where it is missing or not a list)."""
    return [r for r in value if isinstance(r, dict)] if isinstance(value, list | tuple) else []


def build_context(metrics: dict[str, Any], map_products: list[str], map_species: list[str]) -> Context:
    """Read the metrics dict defensively: any key may be missing or empty."""
    meta = metrics.get("meta") or {}
    continuous = frame(
        metrics.get("continuous"),
        ("product", "species", "level", "lead", "lead_block", "region", "season", *CONTINUOUS_SCORES),
    )
    exceedance = frame(
        # Records written before exceedances had regions and seasons are of the whole domain, all seasons.
        [{"region": "domain", "season": "all", **r} for r in _records(metrics.get("exceedance"))],
        (
            "product",
            "species",
            "level",
            "lead_block",
            "threshold_name",
            "threshold",
            "averaging",
            "region",
            "season",
            *CATEGORICAL,
        ),
    )
    significance = frame(
        metrics.get("significance"),
        ("product", "species", "level", "lead_block", "reference", "verdict", *SIGNIFICANCE),
    )
    mda8 = frame(
        # Records written before MDA8 had seasons are of all seasons.
        [{"season": "all", **r} for r in _records(metrics.get("mda8"))],
        ("product", "species", "level", "lead_block", "region", "season", *CONTINUOUS_SCORES),
    )
    stations = frame(
        metrics.get("stations"), ("product", "species", "level", "lead_block", "stations", *CONTINUOUS_SCORES)
    )
    all_frames = (continuous, exceedance, significance, mda8, stations)
    reference = str(meta.get("reference") or "median")
    members = _union(meta.get("members"))
    found = [_values(df, "product") for df in all_frames]
    products = _union(meta.get("products"), *found, map_products)
    products.sort(key=lambda p: _ROLE_ORDER[product_role(p, reference, members)])  # stable sort
    species = _union(meta.get("species"), *[_values(df, "species") for df in all_frames], map_species)
    blocks = _union(meta.get("lead_blocks"), sorted(set(_values(continuous, "lead_block")) - {"all"}))
    blocks = [b for b in blocks if b != "all"]
    regions = dict(meta.get("regions") or {})
    for name in _values(continuous, "region"):
        regions.setdefault(name, {})
    if "domain" in regions:  # the whole domain first
        regions = {"domain": regions.pop("domain"), **regions}
    seasons = _union(meta.get("seasons"), _values(continuous, "season"))
    seasons = [s for s in seasons if s != "all"]
    levels = [v for v in meta.get("levels") or [] if v is not None] or sorted(
        continuous["level"].dropna().unique().tolist()
    )
    level = float(levels[0]) if levels else None
    ctx = Context(
        meta=meta,
        products=products,
        members=members,
        reference=reference,
        species=species,
        blocks=blocks,
        regions=regions,
        seasons=seasons,
        level=level,
        units=str(meta.get("units") or "µg/m3"),
        continuous=_at_level(continuous, level),
        exceedance=_at_level(exceedance, level),
        # The page's scorecard is against the reference; rows against --compare-to products stay in the JSON.
        significance=_at_level(
            significance[significance["reference"].isna() | (significance["reference"] == reference)], level
        ),
        mda8=_at_level(mda8, level),
        stations=_at_level(stations, level),
    )
    if len(levels) > 1:
        ctx.notes.append(f"This page shows level {levels[0]} only; metrics.json holds the levels {levels}.")
    return ctx


def _at_level(df: pd.DataFrame, level: float | None) -> pd.DataFrame:
    if level is None or df["level"].isna().all():
        return df
    return df[df["level"].isna() | (df["level"] == level)]
