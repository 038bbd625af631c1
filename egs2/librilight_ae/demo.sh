#!/usr/bin/env bash
# The recipe's demo: every stage on the built-in corpus at a coffee-break budget (make demo).
# The same run.sh with smaller budgets, in its own exp_demo/ and RESULTS_demo.md beside the
# full comparison's exp/ and RESULTS.md (make study; data/ and dump/ are shared):
#   - one seed: the tables show every measure, but with one seed no difference is called;
#     `make study` (./run.sh) gives the spread over three;
#   - 600 pretraining steps for the baseline (progressive 300, its schedule's ratio);
#   - per run, step 0, each phase's end and one snapshot between are analysed;
#   - frozen ASR on each run's last checkpoint; downstream trainings at half their updates.
# Options given here win over these (e.g. ./demo.sh --stage 7).
set -euo pipefail
cd "$(dirname "$0")"
exec ./run.sh --expdir exp_demo --results RESULTS_demo.md --seeds 1 --pretrain_steps 600 \
    --analysis_between 1 --asr_checkpoints_per_run 1 --downstream_updates_scale 0.5 \
    --progress_reference conf/stage_times/demo.tsv "$@"
