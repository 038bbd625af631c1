#!/usr/bin/env bash
# HuBERT pretraining schedules and their layerwise "autoencoder behaviour" analysis
# (Vielzeuf, Interspeech 2024), as an ESPnet recipe.
#
#   ./run.sh                                   # everything on the built-in corpus (CPU)
#   ./run.sh --stage 5 --strategy progressive  # from pretraining on
#   ./run.sh --data librispeech --ngpu 4       # LibriSpeech / Libri-light (paths in db.sh)
#   ./run.sh --strategy "baseline progressive" # several strategies, compared in RESULTS.md
#
# Stages: 1 data, 2 format audio/filter, 3 alignments, 4 initial targets (MFCC + k-means),
# 5 pretraining, 6 register upstreams, 7 layerwise analysis, 8 SUPERB-style ASR,
# 9 Libri-light fine-tuning, 10 report. Every stage skips the work that is already done,
# so a rerun after an interruption resumes; data/, dump/ and exp/ can be removed to start over.
set -euo pipefail

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*" >&2; }

. ./path.sh
# The defaults this recipe shares with the Python tools are declared once, in the package
# (espnet_hubert_ae/defaults.py), and read here as default_<name>.
defaults=$(python -m espnet_hubert_ae.defaults) || { echo "$0: cannot read espnet_hubert_ae.defaults" >&2; exit 1; }
eval "${defaults}"

### options
# Stages and resources
stage=1              # first stage to run
stop_stage=10        # last stage to run
nj=2                 # parallel jobs for data and feature work
ngpu=0               # GPUs per training job (0: CPU)
seed=${default_seed}  # random seed used by every stage
seeds=${default_seeds}  # seeds of the evaluations with a spread (probe speaker splits, downstream trainings): mean ± std over them
# Where results go (data/ and dump/ hold the corpus; several budgets of it can sit side by side)
expdir=exp           # pretraining, analysis, evaluations and the report's exp/report/ (the demo: exp_demo)
results=RESULTS.md   # the report of stage 10 (the demo: RESULTS_demo.md)
# Data
data=builtin         # corpus: builtin (generated with espeak-ng, no download) or librispeech
builtin_minutes=${default_builtin_minutes}  # built-in corpus: minutes of audio in the pretraining set
pretrain_sets=${default_librispeech_pretrain_splits}  # librispeech: training splits for pretraining (add train-clean-360 train-other-500 for 960 h)
librilight_unlab=    # librispeech: Libri-light unlabelled subset added to pretraining (small, medium or large)
eval_sets=           # evaluation sets, e.g. "dev_clean test_clean" (empty: each of ${default_eval_sets} the corpus has)
min_seconds=${default_min_seconds}  # utterances shorter than this are excluded from pretraining
max_seconds=${default_max_seconds}  # utterances longer than this are excluded from pretraining
# Pretraining
strategy=${default_strategies}  # schedule(s): presets (baseline warmstart height progressive; progressive_mfcc, its control) or YAML paths; a list runs each
model=               # model preset or a config YAML (empty: ${default_model_builtin} for builtin, ${default_model_librispeech} otherwise); waveform: tiny (tests), small (CPU), base, large; log-mel: mel_tiny (tests), mel_small (CPU)
targets_dir=dump/targets  # k-means features, models and labels, named by source, K and a digest of what else makes them
kmeans_portion=${default_kmeans_portion}  # share of the pretraining utterances k-means is fitted on (as fairseq and ESPnet fit it)
keep_features=${default_keep_features}  # true: store every set's k-means features whole before labelling (false: only the fit portion's; labels by streaming)
feature_dtype=${default_feature_dtype}  # precision of the stored k-means features (float16 or float32)
pretrain_steps=      # pretraining budget in steps (empty: the schedules' own; builtin: builtin_pretrain_steps), see --budget
budget=${default_budget}  # ratio: one factor scales every strategy, the one giving --reference_strategy --pretrain_steps steps
                     #   (strategies keep their schedules' ratios: progressive gets half the baseline's); equal: each gets it
builtin_pretrain_steps=${default_builtin_pretrain_steps}  # built-in corpus: default budget when pretrain_steps is empty
snapshot_every=      # keep a snapshot every N global steps instead of the schedules' own (empty: theirs)
builtin_snapshot_every=${default_builtin_snapshot_every}  # built-in corpus at its default budget: snapshot_every when that is empty
pretrain_args=       # extra options of espnet_hubert_ae.bin.pretrain, e.g. "--launcher 'torchrun ...' -- --multiprocessing_distributed false"
# Analysis
analysis_set=${default_analysis_set}  # data set analysed (needs phones.ctm and words.ctm)
analysis_checkpoints=spread     # checkpoints analysed: spread (per run: step 0, each phase's end and at most analysis_between others, spread over its steps: bounded at any budget), all (every one stage 6 registered), or registered names
analysis_between=4              # with spread: snapshots analysed per run besides step 0 and the phase ends (more: raise it, or --analysis_checkpoints all)
reference_strategy=${default_reference_strategy}  # strategy whose budget --pretrain_steps is, and whose final score defines time-to-target
analysis_args=                  # extra options of espnet_hubert_ae.bin.analyse, e.g. "--word_embeddings glove.6B.300d.txt --num_phones 30"
# Downstream evaluations (stages 8-9)
asr_upstreams=       # registered upstream names or checkpoint .pth files to evaluate (empty: checkpoints of each --strategy run)
asr_checkpoints_per_run=${default_asr_checkpoints_per_run}  # stage 8 ASR without asr_upstreams: checkpoints of each run, spread over its steps, the last included (CER time-to-target)
asr_controls="fbank random_init"  # controls beside them: fbank (80-d log-mel), random_init (the first run's model untrained)
asr_eval_sets=       # stages 8-9 evaluation sets (empty: --eval_sets if given, else dev_clean test_clean for builtin, every dev/test set otherwise)
superb_config=       # stage 8 ASR template, preset or YAML (empty: ${default_superb_config_builtin} for builtin, ${default_superb_config_librispeech} otherwise)
superb_train_set=    # stage 8 ASR training set (empty: train_10h for builtin, train_pretrain otherwise; SUPERB: train-clean-100)
pr_config=           # stage 8 phoneme-recognition template, preset or YAML (empty: ${default_pr_config_builtin} for builtin, ${default_pr_config_librispeech} otherwise)
pr_train_set=        # stage 8 PR training set, aligned by stage 3 (empty: as superb_train_set; none: no PR)
cache_dtype=${default_cache_dtype}  # stage 8: precision of the cached hidden states (float16 or float32)
finetune_splits=     # fine-tuning sets, e.g. train_1h (empty: builtin train_10min; else each of ${default_finetune_sets} the corpus has)
finetune_config=     # stage 9 template, preset or YAML (empty: finetune_tiny for builtin, finetune_<split> otherwise)
downstream_updates_scale=1  # stages 8-9: train every downstream for this many times its template's updates (whole epochs; e.g. 0.5 for a quick look)
reset_top_layers=    # stage 9: top transformer layers re-initialised before fine-tuning; a list is a sweep (empty: "0 2" for builtin, "0 1 2 3" otherwise)
asr_valid_set=${default_valid_set}  # stages 8-9: validation set for model selection
asr_lm=              # n-gram LM for decoding (not supported yet: greedy CTC only)
# Progress
progress_reference=  # stage times of a reference run (stage_times.tsv format) for the progress line's time left (empty: none)
### end options

. ./local/parse_options.sh
. ./cmd.sh
. ./db.sh

case "${data}" in
    builtin|librispeech) ;;
    *) echo "$0: --data must be builtin or librispeech, not '${data}'" >&2; exit 2 ;;
esac
case "${keep_features}" in true|false) ;; *) echo "$0: --keep_features must be true or false, not '${keep_features}'" >&2; exit 2 ;; esac
case "${feature_dtype}" in float16|float32) ;; *) echo "$0: --feature_dtype must be float16 or float32, not '${feature_dtype}'" >&2; exit 2 ;; esac
for opt in stage stop_stage nj ngpu seed analysis_between; do
    [[ ${!opt} =~ ^[0-9]+$ ]] || { echo "$0: --${opt} must be a non-negative integer, not '${!opt}'" >&2; exit 2; }
done
[[ ${asr_checkpoints_per_run} =~ ^[1-9][0-9]*$ ]] || {
    echo "$0: --asr_checkpoints_per_run must be a positive integer, not '${asr_checkpoints_per_run}'" >&2; exit 2; }

datadir=data
dumpdir=dump/raw
# Registered names (stage 6) resolve in this run's registry, in every tool a stage starts.
export HUBERT_AE_REGISTRY=$(realpath -m "${expdir}")/upstreams.json
pretrain_set=${default_pretrain_set}
valid_set=${default_valid_set}  # pretraining's validation set
# Sets named by --eval_sets / --finetune_splits must exist; left unnamed, each standard set is
# used where the corpus has it, and a missing one is skipped with a note.
eval_list=${eval_sets:-${default_eval_sets}}
finetune_list=${finetune_splits:-${default_finetune_sets}}
builtin_or() { if [ "${data}" = builtin ]; then echo "$1"; else echo "$2"; fi; }
# Words of the first argument that are not among the other arguments, each once.
sets_not_in() {
    local s seen=" ${*:2} "
    for s in $1; do
        [[ ${seen} == *" ${s} "* ]] || { echo "${s}"; seen+="${s} "; }
    done
}
# Stage 8's training sets: stage 2 formats them, stage 3 aligns the phoneme-recognition one.
superb_set=${superb_train_set:-$(builtin_or train_10h "${pretrain_set}")}
pr_set=${pr_train_set:-${superb_set}}
pr_aligned=$([ "${pr_set}" = none ] || echo "${pr_set}")
# Stage 8's templates (stage 9's frozen fbank row trains the ASR one).
superb_template=${superb_config:-$(builtin_or "${default_superb_config_builtin}" "${default_superb_config_librispeech}")}
pr_template=${pr_config:-$(builtin_or "${default_pr_config_builtin}" "${default_pr_config_librispeech}")}

# One recipe directory holds one corpus: refuse to mix them in data/.
corpus_marker=${datadir}/.corpus
if [ -f "${corpus_marker}" ] && [ "$(cat "${corpus_marker}")" != "${data}" ]; then
    echo "$0: ${datadir}/ holds the '$(cat "${corpus_marker}")' corpus, not '${data}'." >&2
    echo "    Use another recipe directory (copy run.sh and the links), or remove ${datadir}/ ${dumpdir}/ ${expdir}/." >&2
    exit 2
fi

# Each stage that runs to its end appends "stage, start, wall seconds, CPU seconds, command" to
# exp/stage_times.tsv (the report's "where the time goes"; the CPU of this shell's whole process
# tree: every job a stage runs is its child); run_stage closes the previous stage's timer and
# prints the progress line (stages done, left, time left by --progress_reference at this pace).
clock_ticks=$(getconf CLK_TCK)
tree_cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$$/stat"; }
run_start=$(date +%s)
timed_stage=
stage_timer_end() {
    [ -n "${timed_stage}" ] || return 0
    mkdir -p "${expdir}"
    printf '%s\t%s\t%s\t%s\t%s\n' "${timed_stage}" "$(date -d "@${timed_start}" '+%F %T')" \
        "$(($(date +%s) - timed_start))" "$(awk -v a="${timed_cpu}" -v b="$(tree_cpu_ticks)" -v t="${clock_ticks}" \
        'BEGIN { printf "%.1f", (b - a) / t }')" "${command_line}" \
        >> "${expdir}/stage_times.tsv"
    timed_stage=
}
run_stage() {
    stage_timer_end
    [ "${stage}" -le "$1" ] && [ "${stop_stage}" -ge "$1" ] || return 1
    log "$(python -m espnet_hubert_ae.bin.stage_progress --times "${expdir}/stage_times.tsv" --since "${run_start}" \
        --next "$1" --last "${stop_stage}" ${progress_reference:+--reference "${progress_reference}"} 2>&1)" || true
    timed_stage=$1 timed_start=$(date +%s) timed_cpu=$(tree_cpu_ticks)
}
# The sets of a list that stage 2 formatted, one a line; a missing one is skipped with a note.
present_sets() {
    local s
    for s in "$@"; do
        if [ -f "${dumpdir}/${s}/wav.scp" ]; then echo "${s}"; else log "  no ${dumpdir}/${s}: skipping it"; fi
    done
}
# Names come from the package's one rule for each (espnet_hubert_ae.utils.naming), never from
# file names here: a schedule goes by its name: field, whatever its file is called.
names() { python -m espnet_hubert_ae.bin.names "$@"; }
read -r -a strategies <<< "${strategy}"
[ ${#strategies[@]} -gt 0 ] || { echo "$0: --strategy is empty" >&2; exit 2; }
found=$(names strategy "${strategies[@]}") || { echo "$0: --strategy ${strategy}: see the error above" >&2; exit 2; }
mapfile -t strategy_names <<< "${found}"
[ -n "${model}" ] || model=$(builtin_or "${default_model_builtin}" "${default_model_librispeech}")
model_config=$(names config model "${model}") || { echo "$0: --model ${model}: see the error above" >&2; exit 2; }
steps=${pretrain_steps}
[ -z "${steps}" ] && [ "${data}" = builtin ] && steps=${builtin_pretrain_steps}
case "${budget}" in ratio|equal) ;; *) echo "$0: --budget must be ratio or equal, not '${budget}'" >&2; exit 2 ;; esac
budget_args=(${steps:+--pretrain_steps "${steps}" --budget "${budget}" --budget_reference "${reference_strategy}"})
[ -z "${snapshot_every}" ] && [ -z "${pretrain_steps}" ] && [ "${data}" = builtin ] && snapshot_every=${builtin_snapshot_every}
run_tag_of() { names run_tag --strategy "$1" --model "${model}" "${budget_args[@]}"; }
# What stages 8-9 evaluate: the given upstreams, else the checkpoints of each run (by run tag).
if [ -n "${asr_upstreams}" ]; then
    read -r -a asr_which <<< "${asr_upstreams}"
    asr_which=(--upstream "${asr_which[@]}")
else
    asr_which=(--run); for s in "${strategies[@]}"; do asr_which+=("$(run_tag_of "${s}")"); done
fi

if run_stage 1; then
    log "Stage 1: data preparation (${data}) -> ${datadir}/"
    local/data.sh --data "${data}" --datadir "${datadir}" --seed "${seed}" --nj "${nj}" \
        --builtin_minutes "${builtin_minutes}" --pretrain_sets "${pretrain_sets}" \
        --librilight_unlab "${librilight_unlab}" --eval_sets "${eval_sets}" --finetune_sets "${finetune_splits}"
fi

if run_stage 2; then
    log "Stage 2: check audio and filter by length -> ${dumpdir}/"
    # Decodes every file once; bad or out-of-range utterances are listed in <set>/excluded.tsv.
    # shellcheck disable=SC2086
    ${cpu_cmd} --num_threads "${nj}" "${dumpdir%/*}/log/format_data.log" \
        python -m espnet_hubert_ae.bin.format_data --src "${datadir}" --dst "${dumpdir}" \
            --sets ${pretrain_set} ${valid_set} --optional_sets ${eval_list} ${finetune_list} \
                $(sets_not_in "${superb_set} ${pr_aligned}" ${pretrain_set} ${valid_set} ${eval_list} ${finetune_list}) \
            --filter_sets "${pretrain_set}" --min_seconds "${min_seconds}" --max_seconds "${max_seconds}" --nj "${nj}"
    grep -hE " (kept|WARNING) " "${dumpdir%/*}/log/format_data.log" >&2 || true
fi

if run_stage 3; then
    log "Stage 3: alignments for the analysis and phoneme recognition"
    # Into the stage 2 sets, their one home: builtin: the synthesiser's timings (stage 1), checked;
    # librispeech: MFA TextGrids -> CTMs (skipped, with a warning, without them)
    # shellcheck disable=SC2086
    ${cpu_cmd} --num_threads 1 "${dumpdir%/*}/log/prepare_alignments.log" \
        python -m espnet_hubert_ae.bin.prepare_alignments --data "${data}" --datadir "${datadir}" \
            --dumpdir "${dumpdir}" --sets ${eval_list} $(sets_not_in "${pr_aligned}" ${eval_list}) \
            --alignments "${LIBRISPEECH_ALIGNMENTS}"
    grep -hE " (aligned|not in|WARNING) " "${dumpdir%/*}/log/prepare_alignments.log" >&2 || true
fi

if run_stage 4; then
    log "Stage 4: initial targets (MFCC + k-means) -> ${targets_dir}/"
    [ -f "${dumpdir}/${pretrain_set}/wav.scp" ] || { echo "$0: ${dumpdir}/${pretrain_set} is missing: run stages 1-2" >&2; exit 1; }
    target_sets=$(present_sets ${pretrain_set} ${finetune_list} ${eval_list})
    # shellcheck disable=SC2206
    targets_args=(--datadir "${dumpdir}" --sets ${target_sets} --train_set "${pretrain_set}" --source mfcc
                  --out_root "${targets_dir}" --frames_from "${model_config}" --portion "${kmeans_portion}"
                  --seed "${seed}" --nj "${nj}" --keep_features "${keep_features}" --feature_dtype "${feature_dtype}")
    # Named by what makes the labels (K of each strategy's first phase, ...): strategies asking for
    # the same labels share them.
    mapfile -t first_dirs < <(python -m espnet_hubert_ae.bin.make_targets "${targets_args[@]}" \
        --strategy "${strategies[@]}" --k auto --print_dir)
    [ ${#first_dirs[@]} -eq ${#strategies[@]} ] || { echo "$0: stage 4: cannot name the targets of --strategy (see above)" >&2; exit 1; }
    made=" "
    for i in "${!strategies[@]}"; do
        first_phase=("${targets_args[@]}" --strategy "${strategies[i]}" --k auto)
        dir=${first_dirs[i]}
        if [[ ${made} == *" ${dir} "* ]]; then log "  ${strategy_names[i]}: the same targets (${dir})"; continue; fi
        made+="${dir} "
        log "  ${strategy_names[i]}: ${dir}/ (logs: ${dir}/log/)"
        # The fit portion's MFCC and k-means; then the labels of every set, one shard per job
        # (only the shards still missing: a rerun redoes a failed or killed one alone); then
        # their merge and quality.
        ${cpu_cmd} --num_threads "${nj}" "${dir}/log/fit.log" \
            python -m espnet_hubert_ae.bin.make_targets "${first_phase[@]}" --step fit
        jobs=$(python -m espnet_hubert_ae.bin.make_targets --step missing --targets_dir "${dir}")
        [ -z "${jobs}" ] || ${cpu_cmd} JOB="${jobs}" "${dir}/log/label.JOB.log" \
            python -m espnet_hubert_ae.bin.make_targets --step label --targets_dir "${dir}" --job JOB
        ${cpu_cmd} "${dir}/log/finish.log" python -m espnet_hubert_ae.bin.make_targets --step finish --targets_dir "${dir}"
        grep -hE "PNMI|reusing" "${dir}/log/fit.log" "${dir}/log/finish.log" >&2 || true
    done
fi

if run_stage 5; then
    eval "extra_args=(${pretrain_args})"  # keeps quoted words, e.g. a --launcher command
    # Later phases' label shards: one per GPU of the training job, each on its own (on the CPU: in
    # the training process).
    label_args=()
    [ "${ngpu}" -gt 0 ] && label_args=(--label_cmd "local/run_job.sh --backend local --gpu 1" --label_jobs "${ngpu}")
    for strategy in "${strategies[@]}"; do
        log "Stage 5: pretraining with strategy '${strategy}'"
        run_tag=$(run_tag_of "${strategy}")
        log "  phases, checkpoints and summaries: ${expdir}/pretrain/${run_tag}/ (log: ${expdir}/pretrain/logs/${run_tag}.log)"
        ${gpu_cmd} --gpu "${ngpu}" --num_threads "${nj}" "${expdir}/pretrain/logs/${run_tag}.log" \
            python -m espnet_hubert_ae.bin.pretrain --strategy "${strategy}" --model "${model}" \
                --datadir "${dumpdir}" --train_set "${pretrain_set}" --valid_set "${valid_set}" \
                --exp_root "${expdir}/pretrain" --targets_root "${targets_dir}" "${budget_args[@]}" \
                ${snapshot_every:+--snapshot_every "${snapshot_every}"} \
                --kmeans_portion "${kmeans_portion}" --keep_features "${keep_features}" --feature_dtype "${feature_dtype}" \
                ${label_args[@]+"${label_args[@]}"} --ngpu "${ngpu}" --nj "${nj}" --seed "${seed}" "${extra_args[@]}"
    done
fi

if run_stage 6; then
    log "Stage 6: register checkpoints as S3PRL upstreams"
    # Cheap and idempotent, so no .done marker: a rerun adds checkpoints kept since the last one.
    python -m espnet_hubert_ae.bin.upstreams register --expdir "${expdir}" --registry "${expdir}/upstreams.json"
    python -m espnet_hubert_ae.bin.upstreams list --registry "${expdir}/upstreams.json"
fi

if run_stage 7; then
    log "Stage 7: layerwise analysis of '${analysis_checkpoints}' on ${analysis_set} (probe seeds: ${seeds})"
    analysis_dir=${expdir}/analysis/${analysis_set}
    analysis_data=${dumpdir}/${analysis_set}  # stage 2's checked set, with stage 3's alignments
    read -r -a checkpoints <<< "${analysis_checkpoints}"
    eval "extra_args=(${analysis_args})"
    # The built-in dev set is small and espeak-ng has rare phones: leave those out, not fail.
    [ "${data}" = builtin ] && extra_args=(--rare_phones drop "${extra_args[@]}")
    device=cpu; [ "${ngpu}" -gt 0 ] && device=cuda
    # Metrics already computed with the same settings are cached per checkpoint, and shared by
    # checkpoints of identical weights (the input controls once per set): a rerun only computes
    # new checkpoints or changed settings, then redraws the table and plots.
    log "  results, table and plots: ${analysis_dir}/ (log: ${analysis_dir}/analyse.log)"
    ${gpu_cmd} --gpu "$((ngpu > 0 ? 1 : 0))" --num_threads "${nj}" "${analysis_dir}/analyse.log" \
        python -m espnet_hubert_ae.bin.analyse --data "${analysis_data}" --outdir "${analysis_dir}" \
            --registry "${expdir}/upstreams.json" --checkpoints "${checkpoints[@]}" \
            --between "${analysis_between}" --reference_strategy "${reference_strategy}" --seed "${seed}" \
            --seeds "${seeds}" --device "${device}" --metric_threads "${nj}" "${extra_args[@]}"
fi

# Stages 8-9 share one character list: that of the largest fine-tuning set present and of the
# validation set (a small training set may lack some of their characters).
token_sets="${dumpdir}/${asr_valid_set}"
for s in ${finetune_list}; do [ -f "${dumpdir}/${s}/text" ] && { token_sets+=" ${dumpdir}/${s}"; break; }; done
# Their evaluation sets: --asr_eval_sets, else --eval_sets, else the built-in corpus' clean dev/test
# sets (the demo's time budget) or every standard one the corpus has.
downstream_evals() {
    printf "${dumpdir}/%s " $(present_sets ${asr_eval_sets:-${eval_sets:-$(builtin_or "dev_clean test_clean" "${eval_list}")}})
}
# The controls as upstream options: fbank by name, random_init as the untrained model of the
# first upstream's architecture (the run's step-0 snapshot when pretraining kept one).
add_controls() {
    local c ri
    controls=()
    for c in ${asr_controls}; do
        case "${c}" in
            fbank) controls+=(--upstream fbank) ;;
            random_init)
                ri=$(python -m espnet_hubert_ae.bin.random_init --like "${asr_which[1]}" \
                    --out_dir "${expdir}/controls/random_init" --seed "${seed}" | tail -n 1)
                controls+=(--random_init "${ri}") ;;
            *) echo "$0: --asr_controls: unknown control '${c}' (fbank, random_init)" >&2; exit 2 ;;
        esac
    done
}
# Frozen evaluations and fine-tunings train on the CPU in nj parallel jobs of one thread, or
# one after the other on a GPU.
downstream_jobs=$((ngpu > 0 ? 1 : nj))

if run_stage 8; then
    log "Stage 8: frozen upstreams: SUPERB-style ASR and phoneme recognition (seeds: ${seeds})"
    add_controls
    evals=$(downstream_evals)
    common=(--valid_set "${dumpdir}/${asr_valid_set}" --seeds "${seeds}" --cache_root "${expdir}/features"
            --updates_scale "${downstream_updates_scale}"
            --dtype "${cache_dtype}" --ngpu "${ngpu}" --nj "${downstream_jobs}" --job JOB ${asr_lm:+--lm "${asr_lm}"})
    # ASR evaluates several checkpoints of each run (the CER's time-to-target), PR the last.
    asr_per_run=()
    [ -z "${asr_upstreams}" ] && asr_per_run=(--checkpoints_per_run "${asr_checkpoints_per_run}")
    # Hidden states are extracted once per upstream and set (exp/features/), then every seed trains on them.
    log "  ASR on ${superb_set}: ${expdir}/asr_superb/ (logs: ${expdir}/asr_superb/logs/superb.*.log)"
    # shellcheck disable=SC2086
    ${gpu_cmd} --gpu "${ngpu}" JOB=1:"${downstream_jobs}" "${expdir}/asr_superb/logs/superb.JOB.log" \
        python -m espnet_hubert_ae.bin.superb_asr "${asr_which[@]}" "${controls[@]}" \
            --config "${superb_template}" \
            --train_set "${dumpdir}/${superb_set}" --eval_sets ${evals} --token_text_sets ${token_sets} \
            --exp_root "${expdir}/asr_superb" "${asr_per_run[@]}" "${common[@]}"
    if [ "${pr_set}" = none ]; then
        log "  no phoneme recognition (--pr_train_set none)"
    elif [ ! -f "${dumpdir}/${pr_set}/phones.ctm" ]; then
        log "  no phoneme recognition: ${dumpdir}/${pr_set} has no phone alignments (stage 3 writes them;" \
            "librispeech: LIBRISPEECH_ALIGNMENTS in db.sh), or choose --pr_train_set, or none"
    else
        log "  PR on ${pr_set}: ${expdir}/pr/ (logs: ${expdir}/pr/logs/pr.*.log)"
        # shellcheck disable=SC2086
        ${gpu_cmd} --gpu "${ngpu}" JOB=1:"${downstream_jobs}" "${expdir}/pr/logs/pr.JOB.log" \
            python -m espnet_hubert_ae.bin.phone_recognition "${asr_which[@]}" "${controls[@]}" \
                --config "${pr_template}" \
                --train_set "${dumpdir}/${pr_set}" --eval_sets ${evals} \
                --exp_root "${expdir}/pr" "${common[@]}"
    fi
fi

if run_stage 9; then
    reset_top_layers=${reset_top_layers:-$(builtin_or "0 2" "0 1 2 3")}
    log "Stage 9: Libri-light fine-tuning (top layers reset: ${reset_top_layers}; seeds: ${seeds})"
    splits=${finetune_splits:-$(builtin_or train_10min "$(present_sets ${finetune_list})")}
    [ -n "${splits}" ] || log "  no fine-tuning set (librispeech: set LIBRILIGHT_LIMITED in db.sh): nothing to do"
    if [ -n "${splits}" ]; then add_controls; evals=$(downstream_evals); fi
    for split in ${splits}; do
        if [ ! -f "${dumpdir}/${split}/text" ]; then
            echo "$0: fine-tuning set ${dumpdir}/${split} is missing; run stages 1-2" \
                "(librispeech: set LIBRILIGHT_LIMITED in db.sh), or choose --finetune_splits" >&2
            exit 2
        fi
        config=${finetune_config:-finetune_$(builtin_or tiny "${split#train_}")}
        log "  ${split}: ${expdir}/finetune/ (logs: ${expdir}/finetune/logs/${split}.*.log)"
        # The fbank row trains the stage 8 downstream on this split (no encoder to fine-tune).
        # shellcheck disable=SC2086
        ${gpu_cmd} --gpu "${ngpu}" JOB=1:"${downstream_jobs}" "${expdir}/finetune/logs/${split}.JOB.log" \
            python -m espnet_hubert_ae.bin.finetune "${asr_which[@]}" "${controls[@]}" --config "${config}" \
                --frozen_config "${superb_template}" \
                --train_set "${dumpdir}/${split}" --valid_set "${dumpdir}/${asr_valid_set}" \
                --eval_sets ${evals} --reset_top_layers ${reset_top_layers} --token_text_sets ${token_sets} \
                --exp_root "${expdir}/finetune" --seeds "${seeds}" --cache_root "${expdir}/features" \
                --updates_scale "${downstream_updates_scale}" \
                --dtype "${cache_dtype}" --ngpu "${ngpu}" --nj "${downstream_jobs}" --job JOB ${asr_lm:+--lm "${asr_lm}"}
    done
fi

if run_stage 10; then
    log "Stage 10: report -> ${results} (and ${expdir}/report/)"
    python -m espnet_hubert_ae.bin.report --recipe_dir . --expdir "${expdir}" --out "${results}" \
        --reference_strategy "${reference_strategy}" --analysis_set "${analysis_set}"
fi

stage_timer_end
log "Finished stages ${stage}-${stop_stage}"
