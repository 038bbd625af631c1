"""Corpora as Kaldi-style data directories: reading, writing, validating, preparing."""
