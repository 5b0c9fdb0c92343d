"""HTML building blocks: escaping, number formats, best-value flags and product × score tables."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dlens.evaluate.report.records import Context

NO_DATA = '<p class="nodata">no data</p>'
DASH = '<span class="na" title="no data">—</span>'
#: Score columns of the per-block table: key, header, format, rule for the best value.
SCORES = (
    ("rmse", "RMSE", "score", "min"),
    ("mae", "MAE", "score", "min"),
    ("bias", "bias", "signed", "absmin"),
    ("r", "r", "ratio3", "max"),
    ("mnmb", "MNMB", "signed3", "absmin"),
    ("fge", "FGE", "ratio3", "min"),
    ("variance_ratio", "σ ratio", "ratio3", "onemin"),
    ("rmse_top5", "RMSE top 5 %", "score", "min"),
    ("skill_persistence", "SS persistence", "signed3", "max"),
    ("skill_climatology", "SS climatology", "signed3", "max"),
)


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included)."""
    return html.escape(str(value), quote=True)


def slug(text: str) -> str:
    """A file- and anchor-safe form of `text` (may be empty)."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def finite(value: Any) -> bool:
    """True for a finite int or float."""
    return isinstance(value, int | float | np.number) and math.isfinite(float(value))


def num(value: Any, kind: str = "score") -> str:
    """A number as plain text ("—" for NaN/None); `kind` picks the format."""
    if not finite(value):
        return "—"
    v = float(value)
    if kind == "count":
        return f"{round(v):,}".replace(",", "\u202f")
    text = {
        "signed": f"{v:+.2f}",
        "signed3": f"{v:+.3f}",
        "ratio3": f"{v:.3f}",
        "ratio2": f"{v:.2f}",
    }.get(kind, f"{v:.1f}" if abs(v) >= 100 else f"{v:.2f}")
    return text.replace("-", "−")


def fmt(value: Any, kind: str = "score") -> str:
    """A number as table HTML; a dash marked 'no data' for NaN/None."""
    return esc(num(value, kind)) if finite(value) else DASH


def best_flags(values: Sequence[Any], rule: str | None) -> list[bool]:
    """Which values are the best of their column (ties all flagged); none when fewer than two are finite."""
    floats = [float(v) if finite(v) else math.nan for v in values]
    if rule is None or sum(math.isfinite(v) for v in floats) < 2:
        return [False] * len(floats)
    key = {"min": lambda v: v, "max": lambda v: -v, "absmin": abs, "onemin": lambda v: abs(v - 1)}[rule]
    keys = [key(v) for v in floats if math.isfinite(v)]
    best = min(keys)
    if math.isclose(best, max(keys), rel_tol=1e-9, abs_tol=1e-12):  # all equal: nothing stands out
        return [False] * len(floats)
    return [math.isfinite(v) and math.isclose(key(v), best, rel_tol=1e-9, abs_tol=1e-12) for v in floats]


def product_cell(ctx: Context, product: str) -> str:
    """The row header of a product, tagged with its role."""
    role = ctx.role(product)
    tag = {"reference": "reference", "dlens": "DL-ENS", "member": "member", "baseline": "baseline"}[role]
    return f'<th scope="row" class="product">{esc(product)} <span class="tag {role}">{tag}</span></th>'


def score_table(
    ctx: Context,
    rows: pd.DataFrame,
    columns: Sequence[tuple[str, str, str, str | None]],
    caption: str,
    groups: Sequence[tuple[str, str, Iterable[tuple[str, Any]]]] = (),
) -> str:
    """Products as rows, `columns` (key, header, format, best rule) per column group.

    `groups` lists (group header, title, [(column, value), ...] filters); with no groups the
    columns are taken straight from `rows` (one row per product).
    """
    groups = list(groups) or [("", "", [])]
    products = [p for p in ctx.products if p in set(rows["product"].dropna())]
    if not products:
        return NO_DATA
    cells: list[list[str]] = [[product_cell(ctx, p)] for p in products]
    for _, _, filters in groups:
        part = rows
        for col, value in filters:
            part = part[part[col] == value]
        part = part.drop_duplicates("product").set_index("product")
        for key, _, kind, rule in columns:
            values = [part.at[p, key] if p in part.index else math.nan for p in products]
            for row, value, best in zip(cells, values, best_flags(values, rule)):
                row.append(f'<td class="num{" best" if best else ""}">{fmt(value, kind)}</td>')
    head = ""
    if groups[0][0]:
        head += '<tr><th rowspan="2" scope="col">product</th>' + "".join(
            f'<th colspan="{len(columns)}" scope="colgroup" class="group" title="{esc(title)}">'
            f"{esc(name)}</th>"
            for name, title, _ in groups
        )
        head += "</tr><tr>" + "".join(f'<th scope="col">{esc(h)}</th>' for _, h, _, _ in columns) * len(
            groups
        )
    else:
        head += '<tr><th scope="col">product</th>' + "".join(
            f'<th scope="col">{esc(h)}</th>' for _, h, _, _ in columns
        )
    body = "".join(
        f'<tr class="{ctx.role(p)}">{"".join(row)}</tr>' for p, row in zip(products, cells, strict=True)
    )
    return (
        f'<div class="scroll"><table class="scores"><caption>{caption}</caption>'
        f"<thead>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )
