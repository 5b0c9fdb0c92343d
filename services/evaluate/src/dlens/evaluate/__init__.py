"""DL-ENS evaluate service: baselines, verification metrics and the HTML report."""
