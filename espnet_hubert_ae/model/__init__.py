"""ESPnet HuBERT pretraining checkpoints: loading, frame arithmetic, hidden states (``hubert``),
and seeded random checkpoints for tests and benchmarks (``factory``)."""
