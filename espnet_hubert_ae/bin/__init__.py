"""Thin command-line tools, one per recipe job: ``python -m espnet_hubert_ae.bin.<tool>``."""
