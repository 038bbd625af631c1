"""Layerwise analysis: how input-like and how linguistic each layer of a checkpoint is.

- ``cca``: projection-weighted CCA and the fold / trial / regulariser protocol (Pasad et al.);
- ``views``: the mel, phone, word and word-embedding views, segment pooling, instance sampling;
- ``probe``: the linear frame-level phone probe; ``clusters``: k-means cluster quality;
- ``stats``: top-layer drop, input rebound, steps-to-target;
- ``config``: the metrics and their settings; ``sampling``: the utterances, instances and
  frames drawn from a data set for every checkpoint;
- ``collector``: hidden states streamed per utterance and reduced per layer; ``metrics``: one
  metric on one layer; ``cache``: a JSON per checkpoint and metric;
- ``layerwise``: one checkpoint on one data set, computing only what is not cached;
- ``overview`` / ``plots``: the combined table, summary and PNG plots.
"""


class AnalysisError(ValueError):
    """The analysis cannot run on this input (missing alignments, too few instances, bad files)."""
