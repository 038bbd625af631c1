"""Downstream ASR: SUPERB-style frozen evaluation (stage 8) and CTC fine-tuning (stage 9).

Both go through stock ESPnet ASR training with configs generated from ``conf/asr/``; this
package adds what ESPnet leaves to recipes: the character token list, the top-N layer reset
of a pretrained encoder, greedy CTC decoding, and WER/CER scoring.
"""
