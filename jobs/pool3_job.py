"""spark-submit entry point for every pool3 command.

    ./spark-submit.sh --master spark://host:7077 -- featurize --input IMAGES --output FEATURES
    spark-submit --py-files build/pool3.zip jobs/pool3_job.py train --features F --output M

Thin on purpose: parsing, config, the session and the work live in the ``pool3`` package
(shipped to executors as a zip or in a packed venv; see docs/cluster.md).
"""

from __future__ import annotations

import sys

from pool3.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
