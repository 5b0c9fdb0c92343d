"""Line plots: RMSE and bias against lead time, one line per product (matplotlib's Figure API)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from dlens.evaluate.report.records import Context

_BASELINE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf")
_DLENS_COLOURS = ("#d62728", "#e377c2", "#bcbd22", "#7f0000")
MEMBER_COLOUR = "#9e9e9e"


def plain(text: str) -> str:
    """Text that matplotlib draws literally (no mathtext between dollar signs)."""
    return str(text).replace("$", r"\$")


def product_styles(ctx: Context) -> dict[str, dict]:
    """Line style per product: members thin and grey, the reference black, baselines and dlens-* bold."""
    styles: dict[str, dict] = {}
    n_base = n_dlens = 0
    for product in ctx.products:
        role = ctx.role(product)
        if role == "member":
            styles[product] = {"color": MEMBER_COLOUR, "lw": 0.9, "alpha": 0.8, "zorder": 1}
        elif role == "reference":
            styles[product] = {"color": "black", "lw": 2.4, "zorder": 4}
        elif role == "dlens":
            colour = _DLENS_COLOURS[n_dlens % len(_DLENS_COLOURS)]
            styles[product] = {"color": colour, "lw": 2.8, "marker": "o", "ms": 4, "zorder": 5}
            n_dlens += 1
        else:
            colour = _BASELINE_COLOURS[n_base % len(_BASELINE_COLOURS)]
            styles[product] = {"color": colour, "lw": 2.0, "ls": "--", "zorder": 3}
            n_base += 1
    return styles


def per_lead(ctx: Context, species: str) -> pd.DataFrame:
    """Whole-domain, all-season rows of one species with a lead time set."""
    df = ctx.continuous
    keep = (df["species"] == species) & df["lead"].notna()
    keep &= df["region"].isin(["domain"]) | df["region"].isna()
    keep &= df["season"].isin(["all"]) | df["season"].isna()
    return df[keep]


def lead_figure(ctx: Context, species: str) -> Figure | None:
    """RMSE (left) and bias (right) against lead time; None when the species has no per-lead rows."""
    rows = per_lead(ctx, species)
    if rows.empty or not np.isfinite(rows[["rmse", "bias"]].to_numpy(dtype=float)).any():
        return None
    styles = product_styles(ctx)
    fig = Figure(figsize=(12, 4.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    leads = np.sort(rows["lead"].unique())
    truth = (ctx.meta.get("target") or {}).get("name", "analysis")
    for ax, score in zip(axes, ("rmse", "bias")):
        table = rows.pivot_table(index="lead", columns="product", values=score, aggfunc="mean", dropna=False)
        for product in ctx.products:
            if product in table and np.isfinite(table[product].to_numpy(dtype=float)).any():
                ax.plot(table.index, table[product], **styles[product])
        _block_guides(ax, ctx, leads)
        if score == "bias":
            ax.axhline(0, color="0.3", lw=0.8, zorder=0)
        ax.set_xlabel("lead time (h)")
        ax.set_ylabel(f"{score.upper() if score == 'rmse' else 'bias'} ({ctx.units})")
        ax.set_title(f"{plain(species)}: {'RMSE' if score == 'rmse' else f'bias (forecast − {truth})'}")
        ax.grid(alpha=0.3)
    handles = []
    for product in ctx.products:
        if product in set(rows["product"]) and ctx.role(product) != "member":
            style = {k: v for k, v in styles[product].items() if k != "zorder"}
            handles.append(Line2D([], [], label=plain(product), **style))
    n_members = len(set(rows["product"]) & set(ctx.members))
    if n_members:
        handles.append(Line2D([], [], color=MEMBER_COLOUR, lw=0.9, label=f"members ({n_members})"))
    fig.legend(handles=handles, loc="outside right upper", fontsize=9, frameon=False)
    return fig


def _block_guides(ax, ctx: Context, leads: np.ndarray) -> None:
    """Thin vertical lines between the lead blocks and ticks every 12 or 24 h."""
    for block in ctx.blocks[1:]:
        try:
            start = int(block.split("-")[0])
        except ValueError:
            continue
        if leads.size and leads.min() < start <= leads.max():
            ax.axvline(start - 0.5, color="0.75", lw=0.8, ls=":", zorder=0)
    if leads.size:
        step = 24 if leads.max() - leads.min() > 48 else 12
        ax.set_xticks(np.arange(leads.min() - leads.min() % step, leads.max() + 1, step))
