"""pool3: Inception-v3 pool_3 features at Spark scale, a linear SVM on top."""

from __future__ import annotations

__version__ = "0.1.0"
