"""Label shards as a job array: the recipe's job runner starts one job per missing shard.

``job_array("local/run_job.sh --gpu 1")`` gives ``make_targets`` a ``label_jobs`` that runs

    <command> JOB=<jobs> <out_dir>/log/label.JOB.log python -m espnet_hubert_ae.bin.make_targets \\
        --step label --targets_dir <out_dir> --job JOB

for exactly the jobs that still have a shard to label, so a rerun after a failure or a kill
redoes only those. Each job reads the plan (``<out_dir>/plan.json``) and labels its shard of
every set; with ``--gpu 1`` it gets a GPU of its own (slurm: ``--gres=gpu:1``; local: the
machine's GPUs in turn).
"""

from __future__ import annotations

import logging
import shlex
import subprocess
import sys

from espnet_hubert_ae.targets.sources import TargetError
from espnet_hubert_ae.targets.streaming import LabelPlan, missing_shards

logger = logging.getLogger(__name__)


def label_command(plan: LabelPlan, job: str = "JOB", python: str = sys.executable) -> list[str]:
    """The command line of one label job (``job``: its number, or the job runner's placeholder)."""
    return [python, "-m", "espnet_hubert_ae.bin.make_targets", "--step", "label", "--targets_dir",
            str(plan.out_dir), "--job", job]  # fmt: skip


def job_array(command: str, python: str = sys.executable):
    """``label_jobs`` for ``make_targets``: the jobs run by ``command`` (a job runner and its
    options, e.g. ``local/run_job.sh --backend slurm --gpu 1``), one per shard, all at once."""
    runner = shlex.split(command)
    if not runner:
        raise TargetError("the label job command is empty")

    def run(plan: LabelPlan, jobs: list[int]) -> None:
        log = plan.out_dir / "log" / "label.JOB.log"
        argv = [*runner, "JOB=" + ",".join(map(str, jobs)), str(log), *label_command(plan, python=python)]
        logger.info("label jobs %s of %d: %s (logs: %s)", ",".join(map(str, jobs)), plan.nj, runner[0], log)
        result = subprocess.run(argv)
        if result.returncode != 0:
            left = missing_shards(plan)
            named = ", ".join(f"{name} shard {j + 1}" for name, j in left) or "none"
            raise TargetError(f"{plan.out_dir}: label jobs failed (exit code {result.returncode}; shards without "
                              f"labels: {named}); see {str(log).replace('JOB', '<job>')}, then rerun to redo "
                              "only those")  # fmt: skip

    return run
