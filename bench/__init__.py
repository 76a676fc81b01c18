"""pool3's benchmarks: one harness (``bench/harness``), scenarios as small definitions
(``bench/scenarios``), results as data (``bench/results.jsonl``) and ``bench/RESULTS.md``
regenerated from them.

    python -m bench list
    python -m bench run SCENARIO [--quick] [--rounds N] [--OPTION VALUE ...] [--no-write]
    python -m bench report
"""
