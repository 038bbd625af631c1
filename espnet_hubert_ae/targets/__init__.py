"""HuBERT k-means targets: ``sources`` (MFCC or a checkpoint layer, tags), ``mfcc``,
``features`` (sharded dumps on disk, the extraction plan), ``kmeans``, ``labels`` (ESPnet
format, length checks), ``streaming`` (labels shard by shard, features computed or read),
``jobs`` (label shards as a job array), ``quality`` (purities, PNMI) and ``pipeline``
(``make_targets``, the whole step)."""
