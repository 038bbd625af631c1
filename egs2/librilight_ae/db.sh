# Corpus locations, one variable per corpus. Leave a variable empty when you do not have
# that corpus; the stage that needs it says which variable to set.
# The built-in corpus (the default --data builtin) needs nothing here: it is generated.

# LibriSpeech root holding train-clean-100/, train-clean-360/, train-other-500/,
# dev-clean/, dev-other/, test-clean/, test-other/ (each <spk>/<chapter>/*.flac + *.trans.txt)
LIBRISPEECH=${LIBRISPEECH:-}
# Libri-light limited-supervision set: the folder holding 1h/{0..5}/{clean,other} and 9h/
LIBRILIGHT_LIMITED=${LIBRILIGHT_LIMITED:-}
# Libri-light unlabelled audio (small/, medium/ or large/ with their voice-activity .json)
LIBRILIGHT_UNLAB=${LIBRILIGHT_UNLAB:-}
# Montreal-Forced-Aligner TextGrids for LibriSpeech (<utt-id>.TextGrid, any sub-folders),
# used to write phones.ctm / words.ctm for the layerwise analysis
LIBRISPEECH_ALIGNMENTS=${LIBRISPEECH_ALIGNMENTS:-}
# Word embeddings in GloVe text format (word v1 v2 ...), for the semantic analysis view
WORD_EMBEDDINGS=${WORD_EMBEDDINGS:-}
