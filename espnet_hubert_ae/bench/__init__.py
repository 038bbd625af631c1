"""Benchmarks run as ``python -m espnet_hubert_ae.bench <name>``; the table is in ``__main__``."""
