# Environment for every stage: the project's virtual environment and thread settings.
__repo_root=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/../.." && pwd)  # also from a linked copy
if [ ! -x "${__repo_root}/.venv/bin/python" ]; then
    echo "ERROR: ${__repo_root}/.venv is missing; run 'make setup' (or 'make demo') at the repository root." >&2
    exit 1
fi
export PATH="${__repo_root}/.venv/bin:${PATH}"
export VIRTUAL_ENV="${__repo_root}/.venv"
export PYTHONPATH="${__repo_root}${PYTHONPATH:+:${PYTHONPATH}}"
export LC_ALL=C
export PYTHONUNBUFFERED=1
# Thread counts are set per job by the job runner and the Python tools; the default keeps
# parallel jobs from oversubscribing the cores. faiss's OpenMP spins without PASSIVE.
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
export OMP_WAIT_POLICY=PASSIVE
# No network at run time: keep hub libraries offline and NLTK quiet.
export HF_HUB_OFFLINE=1
export TRANSFORMERS_OFFLINE=1
unset __repo_root
