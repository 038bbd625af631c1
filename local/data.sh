#!/usr/bin/env bash
# Stage 1: data directories for the chosen corpus (built-in: generated; librispeech: db.sh paths).
set -euo pipefail

. ./path.sh
# Defaults shared with the Python tools (espnet_hubert_ae/defaults.py), as default_<name>.
defaults=$(python -m espnet_hubert_ae.defaults) || { echo "$0: cannot read espnet_hubert_ae.defaults" >&2; exit 1; }
eval "${defaults}"

### options
data=builtin         # builtin or librispeech
datadir=data         # where the data directories go
seed=${default_seed}  # random seed (built-in corpus)
nj=2                 # parallel worker processes
builtin_minutes=${default_builtin_minutes}  # built-in corpus: minutes of audio in the pretraining set
pretrain_sets=${default_librispeech_pretrain_splits}  # librispeech: training splits for pretraining
librilight_unlab=    # librispeech: Libri-light unlabelled subset (small, medium or large)
eval_sets=           # librispeech: evaluation sets, each required (empty: each one the corpus has)
finetune_sets=       # librispeech: Libri-light fine-tuning sets, each required (empty: each one the corpus has)
### end options

. ./local/parse_options.sh
. ./cmd.sh
. ./db.sh

args=(--data "${data}" --datadir "${datadir}" --seed "${seed}" --nj "${nj}")
if [ "${data}" = builtin ]; then
    args+=(--minutes "${builtin_minutes}" --audio_dir "${datadir}/builtin_audio")
else
    if [ -z "${LIBRISPEECH}" ]; then
        echo "$0: --data librispeech needs LIBRISPEECH set in db.sh (the folder with train-clean-100/, dev-clean/, ...)" >&2
        exit 2
    fi
    # shellcheck disable=SC2086
    args+=(--librispeech "${LIBRISPEECH}" --pretrain_splits ${pretrain_sets})
    [ -n "${eval_sets}" ] && args+=(--eval_sets ${eval_sets})
    [ -n "${finetune_sets}" ] && args+=(--finetune_sets ${finetune_sets})
    [ -n "${LIBRILIGHT_LIMITED}" ] && args+=(--librilight_limited "${LIBRILIGHT_LIMITED}")
    if [ -n "${librilight_unlab}" ]; then
        if [ -z "${LIBRILIGHT_UNLAB}" ]; then
            echo "$0: --librilight_unlab ${librilight_unlab} needs LIBRILIGHT_UNLAB set in db.sh" >&2
            exit 2
        fi
        args+=(--librilight_unlab "${LIBRILIGHT_UNLAB}" --unlab_subset "${librilight_unlab}")
    fi
fi
mkdir -p "${datadir}/log"
${cpu_cmd:-local/run_job.sh} --num_threads 1 "${datadir}/log/prepare_data.log" \
    python -m espnet_hubert_ae.bin.prepare_data "${args[@]}"
