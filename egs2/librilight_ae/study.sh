#!/usr/bin/env bash
# The recipe's study: the built-in miniature of the paper's comparison with a spread that means
# something (make study). The same run.sh as the demo (demo.sh), at the study budget, in exp/
# and RESULTS.md:
#   - three seeds for every measure with a spread (probe splits, downstream trainings);
#   - the built-in pretraining budget (baseline 1200 steps, progressive 600: its schedule's ratio);
#   - per run, step 0, each phase's end and up to four snapshots between are analysed;
#   - frozen ASR on three checkpoints of each run (time-to-target of CER); downstream trainings
#     at half their templates' updates.
# Resumable: rerunning the same command continues where it stopped. Options given here win
# over these (e.g. ./study.sh --strategy "baseline warmstart height progressive").
set -euo pipefail
cd "$(dirname "$0")"
exec ./run.sh --seeds "1 2 3" --downstream_updates_scale 0.5 \
    --progress_reference conf/stage_times/study.tsv "$@"
