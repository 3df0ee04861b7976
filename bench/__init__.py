"""Codon SDK benchmark harness: ``python -m bench`` (or ``make bench``).

Benchmarks are the only place speed and memory targets (DESIGN.md section 7)
are checked. Each group lives in ``bench/groups/``; the shared timing kit is
``bench._harness``; see ``bench/README.md`` for how to read the table.
"""
