"""Pretraining: schedules of phases, our ESPnet HuBERT task with schedule hooks, the phase runner."""
