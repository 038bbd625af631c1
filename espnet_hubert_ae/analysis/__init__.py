"""Layerwise analysis: how input-like and how linguistic each layer of a checkpoint is.

- ``cca``: projection-weighted CCA and the fold / trial / regulariser protocol (Pasad et al.);
- ``views``: the mel, phone, word and word-embedding views, segment pooling, instance sampling;
- ``probe``: the linear frame-level phone probe; ``clusters``: k-means cluster quality;
- ``stats``: top-layer drop, input rebound, steps-to-target;
- ``runner``: streams a data set through a checkpoint, with a cache per metric;
- ``report`` / ``plots``: the combined table, summary and PNG plots.
"""


class AnalysisError(ValueError):
    """The analysis cannot run on this input (missing alignments, too few instances, bad files)."""
