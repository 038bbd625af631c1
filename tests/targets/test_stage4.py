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
    """Two strategies whose first phase asks for the same MFCC labels share one k-means fit and one
    label set; only the fit portion's features are stored; a rerun does nothing again."""
    recipe = recipe_copy()
    sets = {"train_pretrain": 8, "dev_clean": 3}
    for i, (name, count) in enumerate(sets.items()):
        write_synthetic_set(tmp_path, name, count, seed=i, datadir=recipe / "dump" / "raw" / name)
    command = ["./run.sh", "--stage", "4", "--stop_stage", "4", "--nj", "2", "--strategy", "ci_baseline ci_progressive",
               "--kmeans_portion", "0.5"]  # fmt: skip
    result = subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    k = int(subprocess.run([sys.executable, "-m", "espnet_hubert_ae.bin.make_targets", "--strategy", "ci_progressive",
                            "--print_k"], capture_output=True, text=True, check=True).stdout)  # fmt: skip
    made = sorted((recipe / "dump" / "targets").glob("mfcc_k*"))
    assert [p.name[: p.name.index("-")] for p in made] == [f"mfcc_k{k}"]  # both strategies' K
    out = made[0]
    assert (out / ".done").is_file() and (out / "tokens.txt").is_file()
    assert "ci_progressive: the same targets" in result.stderr
    assert len(list((out / "log").glob("fit.log"))) == 1 and (out / "log" / "label.2.log").is_file()
    for name in sets:
        utts = {u.utt_id: u.num_samples for u in read_datadir(recipe / "dump" / "raw" / name)}
        assert check_label_counts(out / name / "text", utts, conv_frame_count, exact=True) == len(utts)
        assert (out / name / "quality.json").is_file()
    features = recipe / "dump" / "targets" / "features" / "mfcc"
    assert [p.name for p in features.iterdir()] == ["train_pretrain.fit0.5-seed1.float16"]
    assert "PNMI" in result.stderr and "no dump/raw/train_10h: skipping it" in result.stderr

    rerun = subprocess.run(command, cwd=recipe, capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert rerun.returncode == 0, rerun.stderr
    assert "reusing" in rerun.stderr
