"""Recipe stage 4 (initial MFCC targets) through run.sh, on synthetic stage-2 output."""

from __future__ import annotations

import os
import subprocess
import sys

from espnet_hubert_ae.data.datadir import read_datadir
from espnet_hubert_ae.model.frames import conv_frame_count
from espnet_hubert_ae.targets.labels import check_label_counts

from .conftest import write_synthetic_set


def test_stage4_makes_first_phase_mfcc_targets(tmp_path, recipe_copy):
    recipe = recipe_copy()
    sets = {"train_pretrain": 8, "dev_clean": 3}
    for i, (name, count) in enumerate(sets.items()):
        write_synthetic_set(tmp_path, name, count, seed=i, datadir=recipe / "dump" / "raw" / name)
    command = ["./run.sh", "--stage", "4", "--stop_stage", "4", "--nj", "2", "--strategy", "ci_progressive"]
    result = subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    k = int(subprocess.run([sys.executable, "-m", "espnet_hubert_ae.bin.make_targets", "--strategy", "ci_progressive",
                            "--print_k"], capture_output=True, text=True, check=True).stdout)  # fmt: skip
    out = recipe / "dump" / "targets" / f"ci_progressive_p1_mfcc_k{k}"
    assert (out / ".done").is_file() and (out / "tokens.txt").is_file()
    for name in sets:
        utts = {u.utt_id: u.num_samples for u in read_datadir(recipe / "dump" / "raw" / name)}
        assert check_label_counts(out / name / "text", utts, conv_frame_count, exact=True) == len(utts)
        assert (out / name / "quality.json").is_file()
        assert (recipe / "dump" / "targets" / "features" / "mfcc" / name / "shard.1.npy").is_file()
    assert "PNMI" in result.stderr and "no dump/raw/train_10h: skipping it" in result.stderr

    rerun = subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert rerun.returncode == 0, rerun.stderr
    assert "reusing" in rerun.stderr
