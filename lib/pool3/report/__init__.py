"""Report: the model directory's evaluation files (metrics.json, confusion matrix CSV and
PNG, a self-contained report.html with thumbnails of the images behind the numbers) from
a training result and its duplicates.

May import: :mod:`pool3.training` (its result, metrics, duplicates), :mod:`pool3.images`
(to decode thumbnails), :mod:`pool3.storage` (to read them and write the files),
:mod:`pool3.errors`, matplotlib, Pillow. Never imports commands.
"""
