#!/usr/bin/env bash
# HuBERT pretraining schedules and their layerwise "autoencoder behaviour" analysis
# (Vielzeuf, Interspeech 2024), as an ESPnet recipe.
#
#   ./run.sh                                   # everything on the built-in corpus (CPU)
#   ./run.sh --stage 5 --strategy progressive  # from pretraining on
#   ./run.sh --data librispeech --ngpu 4       # LibriSpeech / Libri-light (paths in db.sh)
#
# Stages: 1 data, 2 format audio/filter, 3 alignments, 4 initial targets (MFCC + k-means),
# 5 pretraining, 6 register upstreams, 7 layerwise analysis, 8 SUPERB-style ASR,
# 9 Libri-light fine-tuning, 10 report. Every stage skips the work that is already done,
# so a rerun after an interruption resumes; data/, dump/ and exp/ can be removed to start over.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2; }

### options
# Stages and resources
stage=1              # first stage to run
stop_stage=4         # last stage to run (stages 5-10 are not implemented yet)
nj=2                 # parallel jobs for data and feature work
ngpu=0               # GPUs per training job (0: CPU)
seed=1               # random seed used by every stage
# Data
data=builtin         # corpus: builtin (generated with espeak-ng, no download) or librispeech
builtin_minutes=30   # built-in corpus: minutes of audio in the pretraining set
pretrain_sets=train-clean-100  # librispeech: training splits for pretraining (add train-clean-360 train-other-500 for 960 h)
librilight_unlab=    # librispeech: Libri-light unlabelled subset added to pretraining (small, medium or large)
min_seconds=1.0      # utterances shorter than this are excluded from pretraining
max_seconds=30.0     # utterances longer than this are excluded from pretraining
# Pretraining
strategy=progressive # schedule: a preset in conf/strategy/ (baseline warmstart height progressive) or a YAML path
model=tiny           # model config in conf/model/: tiny (CPU), base, large
pretrain_steps=      # total pretraining budget in steps (empty: the schedule's own)
### end options

. ./local/parse_options.sh
. ./path.sh
. ./cmd.sh
. ./db.sh

case "${data}" in
    builtin|librispeech) ;;
    *) echo "$0: --data must be builtin or librispeech, not '${data}'" >&2; exit 2 ;;
esac
for opt in stage stop_stage nj ngpu seed; do
    [[ ${!opt} =~ ^[0-9]+$ ]] || { echo "$0: --${opt} must be a non-negative integer, not '${!opt}'" >&2; exit 2; }
done

datadir=data
dumpdir=dump/raw
expdir=exp
pretrain_set=train_pretrain
finetune_sets="train_10h train_1h train_10min"
eval_sets="dev_clean dev_other test_clean test_other"

# One recipe directory holds one corpus: refuse to mix them in data/.
corpus_marker=${datadir}/.corpus
if [ -f "${corpus_marker}" ] && [ "$(cat "${corpus_marker}")" != "${data}" ]; then
    echo "$0: ${datadir}/ holds the '$(cat "${corpus_marker}")' corpus, not '${data}'." >&2
    echo "    Use another recipe directory (copy run.sh and the links), or remove ${datadir}/ ${dumpdir}/ ${expdir}/." >&2
    exit 2
fi

not_implemented() {
    echo "$0: stage $1 ($2) is not implemented yet; rerun with --stop_stage $(($1 - 1))." >&2
    exit 3
}

run_stage() { [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ]; }

if run_stage 1; then
    log "Stage 1: data preparation (${data}) -> ${datadir}/"
    local/data.sh --data "${data}" --datadir "${datadir}" --seed "${seed}" --nj "${nj}" \
        --builtin_minutes "${builtin_minutes}" --pretrain_sets "${pretrain_sets}" \
        --librilight_unlab "${librilight_unlab}"
fi

if run_stage 2; then
    log "Stage 2: check audio and filter by length -> ${dumpdir}/"
    not_implemented 2 "format audio/filter"
fi

if run_stage 3; then
    log "Stage 3: alignments for the analysis"
    not_implemented 3 "alignments"
fi

if run_stage 4; then
    log "Stage 4: initial targets (MFCC + k-means)"
    not_implemented 4 "initial targets"
fi

if run_stage 5; then
    log "Stage 5: pretraining with strategy '${strategy}'"
    not_implemented 5 "pretraining"
fi

if run_stage 6; then
    log "Stage 6: register checkpoints as S3PRL upstreams"
    not_implemented 6 "upstream registration"
fi

if run_stage 7; then
    log "Stage 7: layerwise analysis"
    not_implemented 7 "layerwise analysis"
fi

if run_stage 8; then
    log "Stage 8: SUPERB-style ASR"
    not_implemented 8 "SUPERB-style ASR"
fi

if run_stage 9; then
    log "Stage 9: Libri-light fine-tuning"
    not_implemented 9 "Libri-light fine-tuning"
fi

if run_stage 10; then
    log "Stage 10: report"
    not_implemented 10 "report"
fi

log "Finished stages ${stage}-${stop_stage}"
