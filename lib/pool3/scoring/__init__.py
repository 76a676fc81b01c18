"""Scoring: a trained classifier applied to images, fused with the featurize kernel so that
features never leave the Python worker (:mod:`.predict`).

May import: :mod:`pool3.extraction`, :mod:`pool3.training` (the classifier),
:mod:`pool3.storage`, :mod:`pool3.config`. Never imports report or commands.
"""
