"""The page's sections: header, per-species plots and tables (regions, seasons, exceedances)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd

from dlens.common.species import SPECIES
from dlens.evaluate.report.records import Context
from dlens.evaluate.report.tables import DASH, NO_DATA, SCORES, esc, finite, fmt, score_table, slug


@dataclass(frozen=True)
class FigureRef:
    """A saved figure as the page links it: path relative to index.html, alt text, pixel size."""

    src: str
    alt: str
    width: int
    height: int


def header_html(ctx: Context) -> str:
    """The page header: title, target, period, domain, store, created, code version, products."""
    meta = ctx.meta
    period = meta.get("period") or {}
    domain = meta.get("domain") or {}
    runs = [str(r) for r in period.get("runs") or []]
    run_text = f"{len(runs)} runs, {runs[0]} … {runs[-1]}" if runs else "no runs listed"
    bounds = domain.get("bounds_snwe") or []
    bounds_text = (
        f"{bounds[0]}–{bounds[1]}°N, {bounds[2]}–{bounds[3]}°E" if len(bounds) == 4 else "bounds not given"
    )
    shape = domain.get("shape") or []
    shape_text = f", {shape[0]} × {shape[1]} cells" if len(shape) == 2 else ""
    by_role: dict[str, list[str]] = {}
    for p in ctx.products:
        by_role.setdefault(ctx.role(p), []).append(p)
    products = "; ".join(
        f"{label}: {', '.join(esc(p) for p in by_role[role])}"
        for role, label in (
            ("reference", "reference"),
            ("baseline", "baselines"),
            ("dlens", "DL-ENS"),
            ("member", f"members ({len(by_role.get('member', []))})"),
        )
        if by_role.get(role)
    )
    boot = meta.get("bootstrap") or {}
    boot_text = (
        f"{boot.get('resamples', '?')} resamples by {boot.get('unit', '?')} "
        f"(moving blocks of {boot.get('block_runs', 1)}), "
        f"{100 * float(boot.get('confidence', 0.95)):.0f}% intervals"
        if boot
        else "not given"
    )
    target = meta.get("target") or {"name": "analysis", "group": "analysis"}  # reports before --target
    items = [
        ("Target", f"{esc(target['name'])} (store group <code>{esc(target['group'])}</code>)"),
        (
            "Period",
            f"from {esc(period.get('start', '?'))}, {esc(period.get('days', '?'))} days ({esc(run_text)})",
        ),
        ("Domain", f"{esc(domain.get('name', '?'))}: {esc(bounds_text)}{esc(shape_text)}"),
        ("Store", f"<code>{esc(meta.get('store', '?'))}</code>"),
        ("Created", esc(meta.get("created", "?"))),
        ("Code version", f"<code>{esc(meta.get('code_version', '?'))}</code>"),
        ("Products", products or "none"),
        ("Species", esc(", ".join(ctx.species)) or "none"),
        ("Bootstrap", esc(boot_text)),
        ("Units", esc(ctx.units)),
        ("Data", '<a href="metrics.json">metrics.json</a> · <a href="maps.nc">maps.nc</a>'),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in items)
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in ctx.notes)
    title = esc(meta.get("title") or "DL-ENS verification report")
    return f'<header><h1>{title}</h1><dl class="meta">{rows}</dl>{notes}</header>'


def _figure_html(fig: FigureRef | None, caption: str) -> str:
    if fig is None:
        return f'<figure class="plot"><figcaption>{esc(caption)}</figcaption>{NO_DATA}</figure>'
    return (
        f'<figure class="plot"><img src="{esc(quote(fig.src))}" alt="{esc(fig.alt)}" '
        f'width="{fig.width}" height="{fig.height}"><figcaption>{esc(caption)}</figcaption></figure>'
    )


def _aggregate_rows(ctx: Context, species: str) -> pd.DataFrame:
    df = ctx.continuous
    return df[(df["species"] == species) & df["lead"].isna()]


def blocks_html(ctx: Context, species: str) -> str:
    """Whole-domain scores per product, one table per lead block (all leads first)."""
    rows = _aggregate_rows(ctx, species)
    rows = rows[rows["region"].isin(["domain"]) & rows["season"].isin(["all"])]
    if rows.empty:
        return NO_DATA
    columns = [
        ("n", "n", "count", None),
        *(s for s in SCORES if s[0] in rows.columns),
    ]  # older reports lack some
    tables = []
    for block in ["all", *ctx.blocks]:
        part = rows[rows["lead_block"] == block]
        name = "all leads" if block == "all" else f"lead {block} h"
        tables.append(score_table(ctx, part, columns, esc(name)) if not part.empty else "")
    return '<div class="grid">' + "".join(t for t in tables if t) + "</div>"


def regions_html(ctx: Context, species: str) -> str:
    """RMSE and bias per product and region, all leads and seasons."""
    rows = _aggregate_rows(ctx, species)
    rows = rows[rows["lead_block"].isin(["all"]) & rows["season"].isin(["all"])]
    regions = [r for r in ctx.regions if r in set(rows["region"])]
    if not regions:
        return NO_DATA
    groups = []
    for name in regions:
        info = ctx.regions.get(name) or {}
        title = f"{info.get('description', name)}, {info.get('cells', '?')} cells"
        groups.append((name, title, [("region", name)]))
    columns = [("rmse", "RMSE", "score", "min"), ("bias", "bias", "signed", "absmin")]
    legend = "".join(
        f"<li><b>{esc(name)}</b>: {esc((ctx.regions.get(name) or {}).get('description', ''))} "
        f"({esc((ctx.regions.get(name) or {}).get('cells', '?'))} cells)</li>"
        for name in regions
    )
    caption = "all leads, all seasons"
    return score_table(ctx, rows, columns, caption, groups) + f'<ul class="regions">{legend}</ul>'


def seasons_html(ctx: Context, species: str) -> str:
    """n, RMSE and bias per product and season, all leads, whole domain."""
    rows = _aggregate_rows(ctx, species)
    rows = rows[rows["lead_block"].isin(["all"]) & rows["region"].isin(["domain"])]
    seasons = [s for s in ctx.seasons if s in set(rows["season"])]
    if not seasons:
        return NO_DATA
    groups = [(s, s, [("season", s)]) for s in seasons]
    columns = [
        ("n", "n", "count", None),
        ("rmse", "RMSE", "score", "min"),
        ("bias", "bias", "signed", "absmin"),
    ]
    return score_table(ctx, rows, columns, "all leads, whole domain", groups)


def mda8_html(ctx: Context, species: str) -> str:
    """Maximum daily 8-hour means (O3): scores per product and forecast day, whole domain, then RMSE by
    region and by season (all days)."""
    everything = ctx.mda8[ctx.mda8["species"] == species]
    rows = everything[(everything["region"] == "domain") & (everything["season"] == "all")]
    blocks = [b for b in ["all", *ctx.blocks] if b in set(rows["lead_block"])]
    if not blocks:
        return NO_DATA
    columns = [("n", "n", "count", None), ("rmse", "RMSE", "score", "min"),
               ("bias", "bias", "signed", "absmin"), ("r", "r", "ratio3", "max")]  # fmt: skip
    groups = [("all days" if b == "all" else f"{b} h", "", [("lead_block", b)]) for b in blocks]
    table = score_table(
        ctx, rows, columns, "MDA8 by forecast day (day d in lead block d), whole domain", groups
    )
    overall, rmse = everything[everything["lead_block"] == "all"], ("rmse", "RMSE", "score", "min")
    regions = [r for r in ctx.regions if r != "domain"]
    table += _score_by(ctx, overall[overall["season"] == "all"], "region", regions,
                       "MDA8 RMSE by region, all days", rmse)  # fmt: skip
    table += _score_by(ctx, overall[overall["region"] == "domain"], "season", ctx.seasons,
                       "MDA8 RMSE by season, all days, whole domain", rmse)  # fmt: skip
    return table


def _fss_header(rows: pd.DataFrame) -> str:
    """ "FSS w×w" with the neighbourhood of the rows (cells), or "FSS"."""
    window = rows["fss_window"].max() if "fss_window" in rows else float("nan")
    return f"FSS {window:.0f}×{window:.0f}" if finite(window) else "FSS"


def exceedance_html(ctx: Context, species: str) -> str:
    """Per threshold: contingency counts, POD, FAR, CSI, SEDI and FSS per product, then CSI per lead block,
    per region and per season."""
    everything = ctx.exceedance[ctx.exceedance["species"] == species]
    region, season = everything["region"], everything["season"]
    rows = everything[(region == "domain") & (season == "all")]
    if rows.empty:
        return NO_DATA
    columns = [
        ("hits", "hits", "count", None),
        ("misses", "misses", "count", None),
        ("false_alarms", "false alarms", "count", None),
        ("correct_negatives", "correct neg.", "count", None),
        ("pod", "POD", "ratio2", "max"),
        ("far", "FAR", "ratio2", "min"),
        ("csi", "CSI", "ratio2", "max"),
        *(
            c
            for c in (("sedi", "SEDI", "ratio2", "max"), ("fss", _fss_header(rows), "ratio2", "max"))
            if c[0] in rows
        ),
    ]
    out = []
    keys = rows[["threshold_name", "threshold", "averaging"]].drop_duplicates()
    keys = keys.sort_values("threshold", na_position="last")
    for _, key in keys.iterrows():
        part = rows[_same_threshold(rows, key)]
        blocks = [b for b in ["all", *ctx.blocks] if b in set(part["lead_block"])]
        groups = [("all leads" if b == "all" else f"{b} h", "", [("lead_block", b)]) for b in blocks[:1]]
        table = score_table(ctx, part, columns, "", groups)
        if len(blocks) > 1:
            per_block = [(f"{b} h" if b != "all" else "all", "", [("lead_block", b)]) for b in blocks[1:]]
            table += score_table(ctx, part, [("csi", "CSI", "ratio2", "max")], "CSI by lead block", per_block)
        same = _same_threshold(everything, key) & (everything["lead_block"] == "all")
        csi, regions = ("csi", "CSI", "ratio2", "max"), [r for r in ctx.regions if r != "domain"]
        table += _score_by(ctx, everything[same & (season == "all")], "region", regions,
                           "CSI by region, all leads", csi)  # fmt: skip
        table += _score_by(ctx, everything[same & (region == "domain")], "season", ctx.seasons,
                           "CSI by season, all leads, whole domain", csi)  # fmt: skip
        threshold = f"{fmt(key['threshold'])} {esc(ctx.units)}" if finite(key["threshold"]) else DASH
        observed = part[part["lead_block"] == (blocks[0] if blocks else "all")]
        events = (
            (observed["hits"].fillna(0) + observed["misses"].fillna(0)).max() if not observed.empty else 0
        )
        note = ' <span class="note">(no observed exceedance)</span>' if not events else ""
        averaging = {"mda8": "maximum daily 8-h", "24h": "daily"}.get(key["averaging"], str(key["averaging"]))
        out.append(
            f"<h4>{esc(key['threshold_name'])} threshold {threshold}, "
            f'{esc(averaging)} mean{note}</h4><div class="grid">{table}</div>'
        )
    return "".join(out)


def _same_threshold(rows: pd.DataFrame, key: pd.Series) -> pd.Series:
    """Rows of the threshold `key` (name, value, averaging; a missing value matches a missing value)."""
    value = (rows["threshold"] == key["threshold"]) | (rows["threshold"].isna() & pd.isna(key["threshold"]))
    return (rows["threshold_name"] == key["threshold_name"]) & value & (rows["averaging"] == key["averaging"])


def _score_by(
    ctx: Context, rows: pd.DataFrame, column: str, names: list[str], caption: str, score: tuple
) -> str:
    """A table of one `score` column with a column group per value of `column` (in `names`) found in
    `rows`; empty if none is."""
    found = [name for name in names if name in set(rows[column])]
    if not found:
        return ""
    return score_table(ctx, rows, [score], caption, [(name, "", [(column, name)]) for name in found])


def stations_html(ctx: Context, species: str, figure: FigureRef | None) -> str:
    """Scores at the stations: per station set over all leads, then RMSE per lead block at every station not
    withheld, then the station map."""
    rows = ctx.stations[ctx.stations["species"] == species]
    overall = rows[rows["lead_block"] == "all"]
    sets = [name for name in (ctx.meta.get("station_sets") or {}) if name in set(overall["stations"])]
    sets += [name for name in dict.fromkeys(overall["stations"]) if name not in sets]
    if not sets:
        return NO_DATA
    described = ctx.meta.get("station_sets") or {}
    groups = []
    for name in sets:
        count = overall.loc[overall["stations"] == name, "station_count"].max()
        groups.append((f"{name} ({fmt(count, 'count')})", described.get(name, name), [("stations", name)]))
    columns = [("n", "n", "count", None), ("rmse", "RMSE", "score", "min"),
               ("bias", "bias", "signed", "absmin"), ("r", "r", "ratio3", "max")]  # fmt: skip
    table = score_table(
        ctx, overall, columns, "all leads; forecasts interpolated (bilinear) to the stations", groups
    )
    per_block = rows[rows["stations"] == sets[0]]
    blocks = [b for b in ctx.blocks if b in set(per_block["lead_block"])]
    if blocks:
        table += score_table(
            ctx, per_block, [("rmse", "RMSE", "score", "min")], f"RMSE by lead block, {sets[0]} stations",
            [(f"{b} h", "", [("lead_block", b)]) for b in blocks],
        )  # fmt: skip
    caption = (
        f"{species}: RMSE of the {ctx.reference} at each station over the period and, per product, the gain "
        f"RMSE({ctx.reference}) − RMSE(product); blue = better; withheld stations are triangles"
    )
    return f'<div class="grid">{table}</div>' + _figure_html(figure, caption)


def species_html(ctx: Context, index: int, species: str, figures: dict[str, FigureRef | None]) -> str:
    """The section of one species: lead-time figure, score tables, maps, regions, seasons, exceedances."""
    info = SPECIES.get(species)
    long_name = f" — {info.long_name}" if info else ""
    lead_fig = figures.get("leads")
    map_fig = figures.get("maps")
    return (
        f'<section class="species" id="{species_anchor(index, species)}">'
        f"<h2>{esc(species)}{esc(long_name)}</h2>"
        "<h3>Scores against lead time</h3>"
        + _figure_html(lead_fig, f"{species}: RMSE and bias against lead time, whole domain, all seasons")
        + "<h3>Scores by lead block</h3>"
        + blocks_html(ctx, species)
        + f"<h3>Maps: RMSE of {esc(ctx.reference)} and gain over it</h3>"
        + _figure_html(
            map_fig,
            f"{species}: RMSE of the {ctx.reference} over the period and, per product, the gain "
            f"RMSE({ctx.reference}) − RMSE(product); blue = better than the {ctx.reference}",
        )
        + '<div class="grid"><div><h3>Regions</h3>'
        + regions_html(ctx, species)
        + "</div><div><h3>Seasons</h3>"
        + seasons_html(ctx, species)
        + "</div></div>"
        + (
            "<h3>Maximum daily 8-hour mean</h3>" + mda8_html(ctx, species)
            if (ctx.mda8["species"] == species).any()
            else ""
        )
        + "<h3>Threshold exceedances</h3>"
        + exceedance_html(ctx, species)
        + (
            "<h3>At stations</h3>" + stations_html(ctx, species, figures.get("stations"))
            if (ctx.stations["species"] == species).any()
            else ""
        )
        + "</section>"
    )


def species_anchor(index: int, species: str) -> str:
    """The id of a species section (safe whatever the species name)."""
    return f"species-{index}-{slug(species)}".rstrip("-")
