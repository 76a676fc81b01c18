"""pool3's version, in a module of its own so that any module can import it without
importing the package's public API (:mod:`pool3`'s ``__init__``)."""

from __future__ import annotations

__version__ = "0.1.0"
