"""Downstream evaluation: frozen upstreams SUPERB style (stage 8) and CTC fine-tuning (stage 9).

Everything trains through ESPnet's ASR task with configs generated from ``conf/asr/``. This
package adds what ESPnet leaves to recipes: the feature cache of frozen upstreams
(``cache``, ``sources``), the weighted-layer-sum frontend and the downstream encoders
(``components``), character and phone token lists (``tokens``, ``phones``), the controls
(``sources`` for FBANK, ``random_init``), seeds and their summaries (``seeds``), the top-N
layer reset of a pretrained encoder (``reset``), greedy CTC decoding, WER/CER/PER scoring, and
the results read back for the report (``results``).
"""
