"""Report: the model directory's evaluation files (metrics.json, confusion matrix CSV and
PNG, a self-contained report.html) from a training result.

May import: :mod:`pool3.training` (its result and metrics), :mod:`pool3.errors`, matplotlib.
Never imports commands.
"""
