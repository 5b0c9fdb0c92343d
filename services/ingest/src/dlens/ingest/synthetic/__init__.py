"""Synthetic CAMS stand-in: hidden truth, analysis, 11 members, IFS-like meteo, static maps.

See DESIGN.md §5. Everything is deterministic from (seed, date).
"""

from dlens.ingest.synthetic.generator import METEO_VARIABLES, SyntheticGenerator

__all__ = ["METEO_VARIABLES", "SyntheticGenerator"]
