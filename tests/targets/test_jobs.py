"""Label shards as a job array through local/run_job.sh: a shard killed mid-way is named, and a
rerun redoes it alone, ending with the labels of an uninterrupted run."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time

import pytest

from espnet_hubert_ae.data.datadir import read_datadir, write_datadir
from espnet_hubert_ae.targets.jobs import job_array, label_command
from espnet_hubert_ae.targets.pipeline import MFCC, finish_targets, fit_targets, make_targets
from espnet_hubert_ae.targets.sources import TargetError
from espnet_hubert_ae.targets.streaming import LabelPlan

from .conftest import write_synthetic_set


def _partial_file(plan: LabelPlan, set_name: str, shard: int):
    found = [p for p in plan.shard_dir(set_name).glob(f".text.{shard}.*.tmp") if p.stat().st_size > 0]
    return found[0] if found else None


def test_a_killed_shard_is_redone_alone(synthetic_sets, tmp_path, recipe_dir):
    common = dict(train_set="train", source=MFCC(), k=6, portion=0.5, nj=2)
    plain = {"train": synthetic_sets["train"], "dev": write_synthetic_set(tmp_path, "dev", 6, seed=3)}
    reference = make_targets(sets=plain, out_dir=tmp_path / "reference", **common)

    # The dev set again, its longest utterance read from a FIFO: job 2 blocks there for good,
    # after it has labelled the train set's shard 2 and the shorter utterances of dev's.
    utts = read_datadir(plain["dev"])
    longest = max(utts, key=lambda u: u.num_samples)
    fifo = tmp_path / "fifo" / f"{longest.utt_id}.wav"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    blocked = [u if u is not longest else type(u)(u.utt_id, str(fifo), u.speaker, u.num_samples) for u in utts]
    dev = write_datadir(tmp_path / "blocked" / "dev", blocked)
    sets = {"train": synthetic_sets["train"], "dev": dev}

    out = tmp_path / "targets"
    plan, _ = fit_targets(sets=sets, out_dir=out, **common)
    runner = job_array(f"{recipe_dir / 'local' / 'run_job.sh'} --backend local")
    runner(plan, [1])
    job2 = subprocess.Popen(label_command(plan, "2"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while _partial_file(plan, "dev", 1) is None and job2.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert job2.poll() is None, f"job 2 ended before it could be killed:\n{job2.stderr.read()[-2000:]}"
    assert _partial_file(plan, "dev", 1) is not None, "job 2 did not get to the middle of dev's shard 2"
    os.killpg(job2.pid, signal.SIGKILL)
    job2.wait(timeout=60)

    with pytest.raises(TargetError, match=r"labels missing for set 'dev' shard 2 \(of 2 shards\): run label job\(s\) 2"):
        finish_targets(out)
    fitted = json.loads((out / "kmeans" / "kmeans.json").read_text())
    first_log = (out / "log" / "label.1.log").stat().st_mtime_ns

    fifo.unlink()
    shutil.copy(longest.audio, fifo)
    result = make_targets(sets=sets, out_dir=out, label_jobs=runner, **common)
    rerun_log = (out / "log" / "label.2.log").read_text()
    assert "labels of train shard 2/2: done already" in rerun_log
    assert "labels of dev shard 2/2: 2 utterances" in rerun_log
    assert (out / "log" / "label.1.log").stat().st_mtime_ns == first_log  # job 1 was not run again
    assert result.summary["kmeans"] == fitted  # k-means was not fitted again
    for name in sets:
        assert result.text(name).read_bytes() == reference.text(name).read_bytes()

