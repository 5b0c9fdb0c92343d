"""The whole page: inline CSS, navigation, header, scorecard and species sections; no external resource."""

from __future__ import annotations

from collections.abc import Sequence

from dlens.evaluate.report.records import Context
from dlens.evaluate.report.scorecard import scorecard_html
from dlens.evaluate.report.sections import header_html, species_anchor
from dlens.evaluate.report.tables import NO_DATA, esc

CSS = """
:root { --better: #a6dba0; --worse: #f4a582; --ns: #e0e0e0; --line: #d0d0d0; --accent: #b2182b; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       margin: 0; color: #1b1b1b; background: #fafafa; font-size: 14px; line-height: 1.4; }
main { max-width: 1500px; margin: 0 auto; padding: 0 20px 40px; }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 12px 20px; }
h1 { font-size: 22px; margin: 4px 0 8px; }
h2 { font-size: 19px; border-bottom: 2px solid #333; padding-bottom: 3px; margin-top: 32px; }
h3 { font-size: 16px; margin: 22px 0 8px; }
h4 { font-size: 14px; margin: 14px 0 6px; }
nav { position: sticky; top: 0; background: #333; padding: 6px 20px; z-index: 2; }
nav a { color: #fff; margin-right: 16px; text-decoration: none; font-weight: 600; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 0; }
dl.meta dt { font-weight: 600; color: #555; }
dl.meta dd { margin: 0; }
code { font-size: 12px; background: #f0f0f0; padding: 0 3px; }
.note { color: #8a4b00; }
.nodata { color: #777; font-style: italic; }
.legend { margin: 4px 0 10px; }
.legend .sc { padding: 1px 6px; border-radius: 3px; }
.cards { display: flex; flex-wrap: wrap; gap: 14px; }
figure { margin: 0; }
figure.card { background: #fff; border: 1px solid var(--line); padding: 6px; }
figure.plot { background: #fff; border: 1px solid var(--line); padding: 6px; display: inline-block;
              max-width: 100%; }
figure.plot img { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 12px; color: #555; margin-top: 4px; }
table { border-collapse: collapse; background: #fff; font-size: 12.5px; }
caption { text-align: left; font-weight: 600; padding: 2px 0 4px; }
th, td { border: 1px solid var(--line); padding: 3px 7px; }
thead th { background: #f0f0f0; position: sticky; top: 0; }
th.group { text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; background: #fff3b0; }
th.product { text-align: left; font-weight: 500; white-space: nowrap; }
tr.member th.product, tr.member td { color: #666; }
tr.dlens th.product, tr.reference th.product { font-weight: 700; }
.tag { font-size: 10px; padding: 0 4px; border-radius: 3px; background: #eee; color: #444; font-weight: 500; }
.tag.dlens { background: var(--accent); color: #fff; }
.tag.reference { background: #333; color: #fff; }
table.scorecard td.sc { text-align: center; font-variant-numeric: tabular-nums; min-width: 92px; }
.sc.better { background: var(--better); }
.sc.worse { background: var(--worse); }
.sc.not-significant { background: var(--ns); }
.sc.nodata { color: #888; font-style: italic; background: #fff; }
.sc small { color: #333; }
.grid { display: flex; flex-wrap: wrap; gap: 14px 28px; align-items: flex-start; }
.scroll { overflow-x: auto; max-width: 100%; }
ul.regions { font-size: 12px; color: #444; margin: 4px 0; }
details { margin-top: 10px; }
summary { cursor: pointer; font-weight: 600; }
"""


def page_html(ctx: Context, sections: Sequence[str]) -> str:
    """The whole page around the species sections."""
    nav = '<a href="#summary">Summary</a>' + "".join(
        f'<a href="#{species_anchor(i, s)}">{esc(s)}</a>' for i, s in enumerate(ctx.species)
    )
    title = esc(ctx.meta.get("title") or "DL-ENS verification report")
    body = scorecard_html(ctx) + ("".join(sections) if sections else NO_DATA)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{CSS}</style></head><body>"
        f"{header_html(ctx)}<nav>{nav}</nav><main>{body}</main></body></html>\n"
    )
