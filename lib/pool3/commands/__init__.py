"""Commands: one module per ``pool3`` command (featurize, train, classify), each reading
top to bottom as its pipeline (prepare, list, compute, write, gate, commit), over the one
run lifecycle in :mod:`.lifecycle`.

May import every package below it. No command imports another command's module; only the
CLI (:mod:`pool3.cli`) imports this package.
"""
