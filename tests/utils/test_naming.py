"""Every derived name, one rule each: runs, snapshots, upstreams, phases, targets, tags of upstreams."""

from __future__ import annotations

import pytest

from espnet_hubert_ae.utils import naming


def test_run_tags_name_strategy_model_and_budget():
    assert naming.run_tag("progressive", "tiny", 120) == "progressive_tiny_120"
    assert naming.run_tag("progressive", "conf/model/small.yaml") == "progressive_small"  # a config path: its stem
    assert naming.run_tag("my schedule", "tiny", None) == "my-schedule_tiny"


def test_snapshots_and_upstream_names():
    assert naming.snapshot_name("progressive", 4, 120) == "progressive_phase4_step0000120.pth"
    prefix = naming.snapshot_prefix("progressive", 4)
    assert naming.snapshot_file(prefix, 120) == naming.snapshot_name("progressive", 4, 120)
    assert naming.upstream_name("progressive_tiny_120", 4, 120) == "progressive_tiny_120/p4/step120"
    assert naming.upstream_name("progressive_tiny_120", 1, 0) == "progressive_tiny_120/p1/step0"  # the initial model


def test_target_and_phase_tags():
    assert naming.target_tag("mfcc", 100, "1a2b3c4d") == "mfcc_k100-1a2b3c4d"
    source = f"L6-{naming.phase_tag('baseline_base', 1)}"
    assert naming.target_tag(source, 500, "9f8e7d6c") == "L6-baseline_base_p1_k500-9f8e7d6c"
    assert naming.target_tag(source, 500) == "L6-baseline_base_p1_k500"


@pytest.mark.parametrize("given, tag", [
    ("progressive_tiny_120/p4/step120", "progressive_tiny_120_p4_step120"),
    ("exp/pretrain/x_tiny/phase2/x_phase2_step0000060.pth", "phase2_x_phase2_step0000060"),
    ("/abs/run dir/model.pth", "run-dir_model"),
])
def test_upstream_tags(given, tag):
    assert naming.upstream_tag(given) == tag


def test_nothing_left_of_a_name_is_refused():
    with pytest.raises(naming.NamingError, match="cannot make a tag"):
        naming.safe_tag(" / ")


def test_names_cli_for_the_recipe(tmp_path, capsys):
    from espnet_hubert_ae.bin import names

    renamed = tmp_path / "my_file.yaml"  # a schedule whose name: differs from its file's stem
    renamed.write_text("name: shortcut\nphases: [{steps: 10, targets: mfcc, k: 5}]\n")
    assert names.main(["strategy", "progressive", str(renamed)]) == 0
    assert capsys.readouterr().out.split() == ["progressive", "shortcut"]
    assert names.main(["run_tag", "--strategy", str(renamed), "--model", "tiny", "--pretrain_steps", "24"]) == 0
    assert capsys.readouterr().out.strip() == "shortcut_tiny_24"
    assert names.main(["upstream_tag", "shortcut_tiny_24/p1/step10"]) == 0
    assert capsys.readouterr().out.strip() == "shortcut_tiny_24_p1_step10"
    assert names.main(["config", "asr", "superb"]) == 0
    assert capsys.readouterr().out.strip().endswith("espnet_hubert_ae/conf/asr/superb.yaml")
    assert names.main(["strategy", "baseline", "nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "unknown strategy 'nope'" in captured.err and "progressive" in captured.err
    assert names.main(["run_tag", "--strategy", "baseline", "--model", "huge"]) == 1
    assert "unknown model 'huge'" in capsys.readouterr().err
