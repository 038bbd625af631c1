#!/usr/bin/env bash
# Create or update the project environment: Debian packages (espeak-ng, sox) and .venv/.
# Idempotent: when nothing that defines the environment changed since the last
# successful run, it only checks and returns.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${root}/.venv"
stamp="${venv}/.setup-stamp"

log() { echo "[setup $(date '+%H:%M:%S')] $*" >&2; }

# --- Debian packages -------------------------------------------------------
missing=()
command -v espeak-ng >/dev/null 2>&1 || missing+=(espeak-ng)
command -v sox >/dev/null 2>&1 || missing+=(sox)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "ERROR: missing system packages: ${missing[*]}." >&2
        echo "       Install them as root, e.g.: sudo apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# --- Python environment ----------------------------------------------------
python=${PYTHON:-}
if [ -z "${python}" ]; then
    for candidate in python3.11 python3; do
        if command -v "${candidate}" >/dev/null 2>&1; then python=${candidate}; break; fi
    done
fi
if ! "${python}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
    echo "ERROR: Python 3.11 is required (espnet 202511 is the last release for it);" >&2
    echo "       '${python}' is $("${python}" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2
    exit 1
fi

# The stamp records what the environment was built from; a change re-runs pip.
want=$(cat "${root}/setup.py" "${root}/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)
if [ -f "${stamp}" ] && [ "$(cat "${stamp}")" = "${want}" ]; then
    exit 0
fi

if [ ! -x "${venv}/bin/python" ]; then
    log "creating ${venv}"
    "${python}" -m venv "${venv}"
fi
# pip stays at the version that ships with Python 3.11: newer pip refuses a
# direct-URL extra declared by one of espnet's dependencies.
log "installing the project and its pinned stack (first time: several minutes, ~7 GB)"
"${venv}/bin/python" -m pip install --disable-pip-version-check -q -e "${root}[test]"
# ESPnet imports g2p_en, which tries to download two NLTK resources at import time and prints
# errors without a network. The recipe never uses g2p: empty placeholders in the venv's
# nltk_data stop the attempt. (Delete .venv/nltk_data to let g2p_en fetch the real ones.)
"${venv}/bin/python" - <<'PY'
import sys, zipfile
from pathlib import Path
for name in ("taggers/averaged_perceptron_tagger_eng.zip", "corpora/cmudict.zip"):
    path = Path(sys.prefix) / "nltk_data" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        zipfile.ZipFile(path, "w").close()
PY
"${venv}/bin/python" -c "import espnet2, s3prl, torchaudio, faiss" \
    || { echo "ERROR: the installed environment does not import; see the pip output above." >&2; exit 1; }
echo "${want}" > "${stamp}"
log "environment ready: ${venv}"
