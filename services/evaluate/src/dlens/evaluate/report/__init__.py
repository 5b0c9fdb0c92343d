"""The HTML verification report: scorecard, lead-time plots, score tables and maps with coastlines."""

from dlens.evaluate.report.writer import write_report

__all__ = ["write_report"]
