"""The summary scorecard: per product, species × lead block, ΔRMSE vs the reference and its CI."""

from __future__ import annotations

from dlens.evaluate.report.records import Context
from dlens.evaluate.report.tables import NO_DATA, esc, finite, fmt, num, slug

VERDICT_GLYPH = {"better": "✔", "worse": "✘", "not significant": "·"}


def _scorecard_grid(ctx: Context, product: str) -> str:
    sig = ctx.significance[ctx.significance["product"] == product]
    blocks = [*ctx.blocks, "all"]
    counts = {"better": 0, "worse": 0, "not significant": 0}
    head = '<tr><th scope="col">species</th>' + "".join(
        f'<th scope="col">{esc("all leads" if b == "all" else b + " h")}</th>' for b in blocks
    )
    body = ""
    for species in ctx.species:
        body += f'<tr><th scope="row">{esc(species)}</th>'
        for block in blocks:
            row = sig[(sig["species"] == species) & (sig["lead_block"] == block)]
            if row.empty:
                body += '<td class="sc nodata" title="no data">no data</td>'
                continue
            r = row.iloc[0]
            verdict = r["verdict"] if r["verdict"] in counts else "not significant"
            counts[verdict] += 1
            rel = (
                f" ({100 * r['difference'] / r['rmse_reference']:+.0f}%)".replace("-", "−")
                if finite(r["difference"]) and finite(r["rmse_reference"]) and r["rmse_reference"]
                else ""
            )
            title = (
                f"{product} vs {ctx.reference}, {species} {block}: RMSE {num(r['rmse'])} vs "
                f"{num(r['rmse_reference'])}; {verdict}"
            )
            interval = (
                f"[{fmt(r['ci_low'], 'signed')}, {fmt(r['ci_high'], 'signed')}]"
                if finite(r["ci_low"])
                else "no interval: too few runs"
            )
            body += (
                f'<td class="sc {slug(verdict)}" title="{esc(title)}">'
                f'<span class="glyph">{VERDICT_GLYPH[verdict]}</span> '
                f"{fmt(r['difference'], 'signed')}{esc(rel)}<br><small>{esc(interval)}</small></td>"
            )
        body += "</tr>"
    tally = " · ".join(f"{n} {v}" for v, n in counts.items())
    return (
        f'<figure class="card"><table class="scorecard" aria-label="scorecard of {esc(product)}">'
        f"<caption>{esc(product)} <small>({esc(tally)})</small></caption>"
        f"<thead>{head}</tr></thead><tbody>{body}</tbody></table></figure>"
    )


def scorecard_html(ctx: Context) -> str:
    """Per compared product, a species × lead-block grid of ΔRMSE vs the reference, coloured by verdict."""
    boot = ctx.meta.get("bootstrap") or {}
    conf = f"{100 * float(boot.get('confidence', 0.95)):.0f}%"
    legend = (
        f'<p class="legend">Cell: ΔRMSE = RMSE(product) − RMSE({esc(ctx.reference)}) in {esc(ctx.units)} '
        f"(relative to the {esc(ctx.reference)}), below it the {esc(conf)} bootstrap confidence interval. "
        '<span class="sc better">✔ better</span> <span class="sc worse">✘ worse</span> '
        '<span class="sc not-significant">· not significant</span></p>'
    )
    compared = [p for p in ctx.compared if p in set(ctx.significance["product"])]
    members = [p for p in ctx.products if ctx.role(p) == "member" and p in set(ctx.significance["product"])]
    if not compared and not members:
        return f'<section id="summary"><h2>Summary scorecard vs {esc(ctx.reference)}</h2>{NO_DATA}</section>'
    grids = "".join(_scorecard_grid(ctx, p) for p in compared) or NO_DATA
    extra = ""
    if members:
        extra = (
            f"<details><summary>Members vs {esc(ctx.reference)} ({len(members)})</summary>"
            f'<div class="cards">{"".join(_scorecard_grid(ctx, p) for p in members)}</div></details>'
        )
    return (
        f'<section id="summary"><h2>Summary scorecard vs {esc(ctx.reference)}</h2>{legend}'
        f'<div class="cards">{grids}</div>{extra}</section>'
    )
