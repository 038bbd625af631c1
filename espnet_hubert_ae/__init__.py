"""espnet-hubert-ae: HuBERT pretraining schedules and layerwise analysis for ESPnet and S3PRL."""

__version__ = "0.1.0"
