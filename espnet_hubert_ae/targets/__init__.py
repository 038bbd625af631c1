"""HuBERT k-means targets: ``sources`` (MFCC or a checkpoint layer, tags), ``mfcc``,
``features`` (sharded dumps on disk), ``kmeans``, ``labels`` (ESPnet format, length checks),
``quality`` (purities, PNMI) and ``pipeline`` (``make_targets``, the whole step)."""
