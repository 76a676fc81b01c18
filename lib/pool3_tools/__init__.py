"""Driver-side tools that never run on executors and are not shipped in ``pool3.zip``:
building that zip (:mod:`.packaging`, standard library only) and writing labelled image
sets as files (:mod:`.datasets`).

May import: :mod:`pool3` (errors only). :mod:`pool3` never imports this package except
lazily, from the CLI's ``datasets`` command.
"""
