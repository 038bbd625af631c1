#!/usr/bin/env bash
# Run a command, or an array of N jobs, on the backend chosen in cmd.sh, with its log.
#
#   run_job.sh [options] [JOB=1:N | JOB=I,J,...] LOG COMMAND [ARGS...]
#
# Every literal "JOB" in LOG and in COMMAND/ARGS is replaced by the job index (a range, or a
# list such as the jobs left to redo). Each job's output goes to its log, which starts with
# the command line and ends with the exit code and duration. Exits non-zero, naming the
# failed jobs' logs, when any job fails.
#
# Options:
#   --backend local|slurm  where the jobs run [${RUN_JOB_BACKEND:-local}]
#   --gpu N                GPUs per job (slurm: --gres=gpu:N; local: N of this machine's GPUs
#                          per job, in turn, through CUDA_VISIBLE_DEVICES) [0]
#   --num_threads N        CPU threads per job (slurm: --cpus-per-task) [1]
#   --mem SIZE             memory per job, slurm only, e.g. 16G []
#   --time LIMIT           time limit per job, slurm only, e.g. 24:00:00 []
#   --slurm_opts "..."     extra sbatch/srun options, slurm only []
set -euo pipefail

backend=${RUN_JOB_BACKEND:-local}
gpu=0
num_threads=1
mem=
time_limit=
slurm_opts=${RUN_JOB_SLURM_OPTS:-}

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --backend) backend=$2; shift 2 ;;
        --gpu) gpu=$2; shift 2 ;;
        --num_threads|--num-threads) num_threads=$2; shift 2 ;;
        --mem) mem=$2; shift 2 ;;
        --time) time_limit=$2; shift 2 ;;
        --slurm_opts|--slurm-opts) slurm_opts=$2; shift 2 ;;
        --help|-h) usage ;;
        --*) echo "run_job.sh: unknown option $1" >&2; usage ;;
        *) break ;;
    esac
done

indices=(1)
if [[ ${1:-} =~ ^JOB=([0-9]+):([0-9]+)$ ]]; then
    mapfile -t indices < <(seq "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}"); shift
elif [[ ${1:-} =~ ^JOB=([0-9]+(,[0-9]+)*)$ ]]; then
    IFS=, read -r -a indices <<< "${BASH_REMATCH[1]}"; shift
elif [[ ${1:-} == JOB=* ]]; then
    echo "run_job.sh: bad job list '$1' (JOB=1:N or JOB=I,J,...)" >&2; exit 2
fi
[ $# -ge 2 ] || usage
log_pattern=$1; shift

case "${backend}" in
    local|slurm) ;;
    *) echo "run_job.sh: unknown backend '${backend}' (local or slurm; set in cmd.sh)" >&2; exit 2 ;;
esac

# Local GPUs: those of CUDA_VISIBLE_DEVICES, else every GPU nvidia-smi lists; job number p
# (0-based, in the order given) gets --gpu of them in turn.
local_gpus=()
if [ "${backend}" = local ] && [ "${gpu}" -gt 0 ]; then
    if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
        IFS=, read -r -a local_gpus <<< "${CUDA_VISIBLE_DEVICES}"
    elif command -v nvidia-smi > /dev/null; then
        mapfile -t local_gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader 2> /dev/null || true)
    fi
fi
gpus_of() {
    local position=$1 d list=()
    for ((d = 0; d < gpu; d++)); do list+=("${local_gpus[$(((position * gpu + d) % ${#local_gpus[@]}))]}"); done
    local IFS=,; echo "${list[*]}"
}

# One job: substitute its index, run it through the backend, and frame its log.
run_one() {
    local index=$1 position=$2; shift 2
    local log=${log_pattern//JOB/${index}}
    local args=() arg
    for arg in "$@"; do args+=("${arg//JOB/${index}}"); done
    mkdir -p "$(dirname "${log}")"
    local start=${SECONDS} rc=0
    {
        echo "# $(printf '%q ' "${args[@]}")"
        echo "# started $(date '+%Y-%m-%d %H:%M:%S') on $(hostname) (backend ${backend})"
    } > "${log}"
    if [ "${backend}" = local ] && [ ${#local_gpus[@]} -gt 0 ]; then
        CUDA_VISIBLE_DEVICES=$(gpus_of "${position}") OMP_NUM_THREADS=${num_threads} "${args[@]}" >> "${log}" 2>&1 || rc=$?
    elif [ "${backend}" = local ]; then
        OMP_NUM_THREADS=${num_threads} "${args[@]}" >> "${log}" 2>&1 || rc=$?
    else
        local srun_args=(--ntasks=1 --cpus-per-task="${num_threads}" --job-name="$(basename "${log%.log}")")
        [ "${gpu}" -gt 0 ] && srun_args+=(--gres="gpu:${gpu}")
        [ -n "${mem}" ] && srun_args+=(--mem="${mem}")
        [ -n "${time_limit}" ] && srun_args+=(--time="${time_limit}")
        # shellcheck disable=SC2206
        [ -n "${slurm_opts}" ] && srun_args+=(${slurm_opts})
        OMP_NUM_THREADS=${num_threads} srun "${srun_args[@]}" "${args[@]}" >> "${log}" 2>&1 || rc=$?
    fi
    echo "# ended $(date '+%Y-%m-%d %H:%M:%S') with exit code ${rc} after $((SECONDS - start)) s" >> "${log}"
    return "${rc}"
}

pids=()
for ((i = 0; i < ${#indices[@]}; i++)); do
    run_one "${indices[i]}" "${i}" "$@" &
    pids+=($!)
done
failed=()
for ((i = 0; i < ${#pids[@]}; i++)); do
    wait "${pids[i]}" || failed+=("${log_pattern//JOB/${indices[i]}}")
done
if [ "${#failed[@]}" -gt 0 ]; then
    echo "run_job.sh: ${#failed[@]} of ${#pids[@]} job(s) failed; see: ${failed[*]}" >&2
    for log in "${failed[@]}"; do
        echo "---- last lines of ${log}:" >&2
        tail -n 15 "${log}" >&2
    done
    exit 1
fi
