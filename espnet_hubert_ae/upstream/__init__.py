"""Pretraining checkpoints as S3PRL upstreams (``hubert_ae_local``) and their registry.

Kept import-free on purpose: :mod:`espnet_hubert_ae.upstream.startup` is imported at every
interpreter start.
"""
