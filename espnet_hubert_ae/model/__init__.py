"""ESPnet HuBERT pretraining checkpoints: frame arithmetic and frames against alignments
(``frames``), loading and layer hidden states (``hubert``), and seeded random checkpoints for
tests and benchmarks (``factory``)."""
