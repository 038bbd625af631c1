"""The built-in corpus: English sentences from a small grammar, synthesised by espeak-ng.

``prepare_builtin`` writes the eight data directories (with exact phone and word CTMs) in
seconds, without any download; see ``corpus`` for sizes and layout.
"""

from espnet_hubert_ae.data.builtin.corpus import SETS, BuiltinCorpusError, corpus_stats, prepare_builtin
from espnet_hubert_ae.data.builtin.espeak import EspeakError

__all__ = ["SETS", "BuiltinCorpusError", "EspeakError", "corpus_stats", "prepare_builtin"]
