"""The phase runner end to end on a tiny model: scratch then warm start with another K, resume."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from espnet_hubert_ae.pretrain import runner
from espnet_hubert_ae.pretrain.runner import PretrainError, PretrainJob, run_schedule
from espnet_hubert_ae.pretrain.schedule import load_schedule, lr_factor

TWO_PHASES = {
    "name": "twophase",
    "lr": {"warmup": 2},
    "phases": [
        {"steps": 6, "targets": "mfcc", "k": 12, "snapshots": 2},
        {"steps": 4, "targets": "top", "k": 16, "init": "continue"},
    ],
}


def write_schedule(tmp_path: Path, schedule: dict) -> Path:
    path = tmp_path / f"{schedule['name']}.yaml"
    path.write_text(yaml.safe_dump(schedule))
    return path


def job_for(tmp_path: Path, sets: dict, strategy: Path, **kwargs) -> PretrainJob:
    return PretrainJob(
        strategy=str(strategy), model="tiny", sets=sets, train_set="train", valid_set="valid",
        exp_root=tmp_path / "exp", targets_root=tmp_path / "targets", checkpoint_interval=3, **kwargs,
    )  # fmt: skip


def files_of(directory: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``directory``: its content's digest and its modification time."""
    return {str(path.relative_to(directory)): (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_two_phases_scratch_then_warm_start(tmp_path, noise_sets, label_maker, monkeypatch):
    strategy = write_schedule(tmp_path, TWO_PHASES)
    exp_dir = run_schedule(job_for(tmp_path, noise_sets, strategy), make_labels=label_maker)
    assert exp_dir.name == "twophase_tiny"
    plan = load_schedule(strategy).plan(4)

    checkpoints = json.loads((exp_dir / "checkpoints.json").read_text())
    assert [(c["phase"], c["global_step"]) for c in checkpoints] == [(1, 0), (1, 3), (1, 6), (2, 10)]
    assert all(Path(c["path"]).is_file() and Path(c["config"]).is_file() for c in checkpoints)

    # The trained phase-2 model started from phase 1's final weights, label layers re-created.
    phase1_final = torch.load(checkpoints[2]["path"], map_location="cpu")
    start = json.loads((exp_dir / "phase2" / "phase_start.json").read_text())
    sums = start["warm_start"]["carried_sums"]
    assert len(sums) > 50
    for name, total in sums.items():
        assert total == pytest.approx(float(phase1_final[name].double().sum()), rel=1e-12, abs=1e-9), name
    assert any("label_embeddings" in n for n in start["warm_start"]["reinitialised"])
    assert start["warm_start"]["optimizer_states_carried"] > 0

    # The learning rate continues the phase-1 curve: no reset, no second warm-up.
    peak = 5e-4
    assert start["first_lr"][0] == pytest.approx(peak * lr_factor(plan[1], 6))
    assert lr_factor(plan[1], 6) == pytest.approx(lr_factor(plan[0], 6))
    ckpt = torch.load(exp_dir / "phase2" / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert ckpt["schedulers"][0]["last_epoch"] == 10  # the global step at the end

    summary = json.loads((exp_dir / "phase2" / "summary.json").read_text())
    assert summary["steps"] == 4 and summary["global_steps"] == [6, 10]
    assert summary["labels"]["k"] == 16
    training = summary["cost"]["training"]
    assert training["wall_s"] > 0 and training["cpu_s"] > 0 and training["gpu_s"] == 0
    # 4 steps, each of 2 to 16 of the 1-2 s noise utterances (cropped to the batch's shortest)
    assert 4 * 2 * 1.0 <= training["audio_s"] <= 4 * 16 * 2.0
    assert {"train_loss", "train_acc_m", "valid_acc_m"} <= set(summary["final"])
    assert summary["health"]["min_ln_gain"] > 0.9 and summary["health"]["dead_layers"] == []
    assert not list((exp_dir / "phase1").glob("*epoch.pth"))  # ESPnet's copies are dropped

    # Stock ESPnet loads the checkpoints (the model class is the stock one).
    from espnet2.tasks.hubert import HubertTask

    model, _ = HubertTask.build_model_from_file(checkpoints[3]["config"], checkpoints[3]["path"], "cpu")
    assert type(model).__name__ == "TorchAudioHubertPretrainModel"

    # A rerun finds every phase done: no labels made, nothing trained, the phases' files untouched
    # (the checkpoint list is written again, with the same content).
    before = files_of(exp_dir)
    work = []
    monkeypatch.setattr(runner, "train", lambda *args, **kwargs: work.append("train"))
    monkeypatch.setattr(runner, "checkpoint_health", lambda *args, **kwargs: work.append("health"))
    run_schedule(job_for(tmp_path, noise_sets, strategy),
                 make_labels=lambda *args: work.append("labels") or label_maker(*args))
    assert work == []
    after = files_of(exp_dir)
    assert after.keys() == before.keys()
    assert {name: digest for name, (digest, _) in after.items()} == {name: d for name, (d, _) in before.items()}
    assert {name: times for name, times in after.items() if name.startswith("phase")} == \
        {name: times for name, times in before.items() if name.startswith("phase")}
    monkeypatch.undo()
    # The same plan from a schedule that now names the strategy it is a control of: nothing is
    # trained again, and the run's record says whose control it is (the report pairs them).
    strategy.write_text(strategy.read_text() + "control_of: baseline\n")
    run_schedule(job_for(tmp_path, noise_sets, strategy), make_labels=label_maker)
    assert json.loads((exp_dir / "schedule.json").read_text())["control_of"] == "baseline"
    assert files_of(exp_dir)["phase2/summary.json"] == before["phase2/summary.json"]
    # Another budget in the same directory is refused.
    (exp_dir / "schedule.json").write_text(json.dumps({"phases": []}))
    with pytest.raises(ValueError, match="another plan"):
        run_schedule(job_for(tmp_path, noise_sets, strategy), make_labels=label_maker)


def test_training_failure_names_the_phase_and_log(tmp_path, noise_sets, label_maker):
    strategy = write_schedule(tmp_path, {**TWO_PHASES, "name": "broken"})
    job = job_for(tmp_path, noise_sets, strategy, train_args=["--no_such_option", "1"])
    with pytest.raises(PretrainError, match=r"phase 1: training failed .*train.log"):
        run_schedule(job, make_labels=label_maker)


RUN_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from conftest import random_labels
from espnet_hubert_ae.pretrain.runner import PretrainJob, run_schedule
job = PretrainJob(strategy={strategy!r}, model="tiny", sets={{"train": Path({train!r}), "valid": Path({valid!r})}},
                  train_set="train", valid_set="valid", exp_root=Path({exp!r}), targets_root=Path({targets!r}),
                  checkpoint_interval=4)
run_schedule(job, make_labels=random_labels)
"""


@pytest.mark.slow  # in CI, the end-to-end recipe test kills and resumes a phase mid-way
def test_resume_after_a_kill(tmp_path, noise_sets):
    schedule = {"name": "killed", "phases": [{"steps": 12, "targets": "mfcc", "k": 10, "snapshots": 3}]}
    strategy = write_schedule(tmp_path, schedule)
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT.format(
        tests=str(Path(__file__).resolve().parent), strategy=str(strategy), train=str(noise_sets["train"]),
        valid=str(noise_sets["valid"]), exp=str(tmp_path / "exp"), targets=str(tmp_path / "targets"),
    ))  # fmt: skip
    phase_dir = tmp_path / "exp" / "killed_tiny" / "phase1"
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        deadline = time.time() + 240
        while not (phase_dir / "checkpoint.pth").is_file():  # the first resumable checkpoint (step 4)
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.5)
        time.sleep(1.0)
    finally:
        with contextlib.suppress(ProcessLookupError):  # already gone when the run failed early
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (phase_dir / ".done").exists()

    subprocess.run([sys.executable, str(script)], check=True)
    log = (phase_dir / "train.log").read_text()
    assert "The training was resumed" in log
    ckpt = torch.load(phase_dir / "checkpoint.pth", map_location="cpu", weights_only=False)
    assert ckpt["schedulers"][0]["last_epoch"] == 12
    assert (phase_dir / "killed_phase1_step0000012.pth").is_file()
    assert json.loads((phase_dir / "summary.json").read_text())["global_steps"] == [0, 12]


def test_identical_phases_of_two_strategies_are_trained_once(tmp_path, noise_sets, label_maker):
    def schedule(name: str, second_k: int) -> Path:
        return write_schedule(tmp_path, {"name": name, "lr": {"warmup": 2}, "phases": [
            {"steps": 4, "targets": "mfcc", "k": 12},
            {"steps": 2, "targets": "top", "k": second_k},
        ]})  # fmt: skip

    first = run_schedule(job_for(tmp_path, noise_sets, schedule("first", 8)), make_labels=label_maker)
    second = run_schedule(job_for(tmp_path, noise_sets, schedule("second", 16)), make_labels=label_maker)
    phase1 = json.loads((second / "phase1" / "summary.json").read_text())
    assert phase1["timing"]["adopted_from"] == str(first / "phase1")
    assert (second / "phase1" / "phase_key.txt").read_text() == (first / "phase1" / "phase_key.txt").read_text()
    for step in (0, 4):  # the same weights, under the adopting run's names
        ours = second / "phase1" / f"second_phase1_step{step:07d}.pth"
        theirs = first / "phase1" / f"first_phase1_step{step:07d}.pth"
        assert ours.stat().st_ino == theirs.stat().st_ino
    assert phase1["cost"]["training"] == json.loads((first / "phase1" / "summary.json").read_text())["cost"]["training"]
    # The second phases differ (K), so each run trained its own.
    phase2 = json.loads((second / "phase2" / "summary.json").read_text())
    assert phase2["timing"]["adopted_from"] is None
    assert (second / "phase2" / "phase_key.txt").read_text() != (first / "phase2" / "phase_key.txt").read_text()


def test_a_phase_kept_with_other_snapshots_is_adopted_when_it_has_every_one_needed(tmp_path, noise_sets, label_maker):
    def schedule(name: str, snapshots: int) -> Path:
        return write_schedule(tmp_path, {"name": name, "lr": {"warmup": 2}, "phases": [
            {"steps": 4, "targets": "mfcc", "k": 12, "snapshots": snapshots},
        ]})  # fmt: skip

    # Keeps steps 0, 2 and 4.
    first = run_schedule(job_for(tmp_path, noise_sets, schedule("first", 2)), make_labels=label_maker)
    # Keeps 0 and 4: the same training, every snapshot it needs is there.
    fewer = run_schedule(job_for(tmp_path, noise_sets, schedule("fewer", 1)), make_labels=label_maker)
    summary = json.loads((fewer / "phase1" / "summary.json").read_text())
    assert summary["timing"]["adopted_from"] == str(first / "phase1")
    kept = sorted(p.name for p in (fewer / "phase1").glob("fewer_phase1_step*.pth"))
    assert kept == ["fewer_phase1_step0000000.pth", "fewer_phase1_step0000004.pth"]  # not step 2
    # Keeps 0, 1, 2, 3 and 4: step 1 and 3 were kept by neither, so it trains its own.
    more = run_schedule(job_for(tmp_path, noise_sets, schedule("more", 4)), make_labels=label_maker)
    summary = json.loads((more / "phase1" / "summary.json").read_text())
    assert summary["timing"]["adopted_from"] is None
    assert (more / "phase1" / "more_phase1_step0000001.pth").is_file()
    assert (more / "phase1" / "phase_key.txt").read_text() == (first / "phase1" / "phase_key.txt").read_text()


def test_first_phase_labels_are_shared_with_stage_4(tmp_path, noise_sets, capsys):
    """A phase asks for its labels by what makes them: the first phase of ci_baseline finds the
    directory that stage 4 names for ci_progressive (same MFCC, K, portion, seed, frame count)."""
    from espnet_hubert_ae.bin import make_targets as cli
    from espnet_hubert_ae.pretrain.runner import make_labels_with_pipeline
    from espnet_hubert_ae.utils.presets import resolve_preset

    config_path = resolve_preset("model", "tiny")
    argv = ["--datadir", str(noise_sets["train"].parent), "--sets", "train", "valid", "--train_set", "train",
            "--portion", "0.5", "--out_root", str(tmp_path / "targets"), "--frames_from", str(config_path),
            "--strategy", "ci_progressive", "--k", "auto"]  # fmt: skip
    assert cli.main(argv + ["--print_dir"]) == 0
    named = Path(capsys.readouterr().out.strip())
    job = job_for(tmp_path, noise_sets, "ci_baseline", kmeans_portion=0.5)
    plan = load_schedule("ci_baseline").plan(4)[0]
    config = {**yaml.safe_load(config_path.read_text()), "num_classes": plan.k}
    labels = make_labels_with_pipeline(job, "ci_baseline", plan, None, config)
    assert Path(labels.texts["train"]).parent.parent == named and (named / ".done").is_file()
    assert labels.cost.cpu_s > 0


def _adopted(run: Path, phase: int) -> str | None:
    return json.loads((run / f"phase{phase}" / "summary.json").read_text())["timing"]["adopted_from"]


def _other_audio(sets: dict, root: Path) -> dict:
    """``sets`` with a training set of the same utterance ids and lengths (so the same labels)
    whose audio is other noise."""
    import shutil

    import numpy as np
    import soundfile as sf

    train = root / "train"
    shutil.copytree(sets["train"], train)
    lines = []
    for line in (train / "wav.scp").read_text().splitlines():
        utt, path = line.split()
        samples = sf.info(path).frames
        new = train / "wav" / Path(path).name
        sf.write(new, (0.1 * np.random.default_rng(len(lines) + 100).standard_normal(samples)).astype("float32"), 16000)
        lines.append(f"{utt} {new}\n")
    (train / "wav.scp").write_text("".join(lines))
    return {**sets, "train": train}


def test_a_phase_differing_in_seed_data_or_the_phase_it_continues_is_trained_again(tmp_path, noise_sets,
                                                                                     label_maker):
    def schedule(name: str, first_k: int = 12) -> Path:
        return write_schedule(tmp_path, {"name": name, "lr": {"warmup": 2}, "phases": [
            {"steps": 2, "targets": "mfcc", "k": first_k},
            {"steps": 2, "targets": "top", "k": 8, "init": "continue"},
        ]})  # fmt: skip

    def run(name: str, sets=noise_sets, **kwargs) -> Path:
        first_k = kwargs.pop("first_k", 12)
        return run_schedule(job_for(tmp_path, sets, schedule(name, first_k), **kwargs), make_labels=label_maker)

    first = run("first")
    key = {phase: (first / f"phase{phase}" / "phase_key.txt").read_text() for phase in (1, 2)}
    # The control: the same two phases under another name are adopted, both.
    same = run("same")
    assert [_adopted(same, 1), _adopted(same, 2)] == [str(first / "phase1"), str(first / "phase2")]
    # Another seed, or other audio under the same utterances and labels: both phases trained again.
    seeded = run("seeded", seed=2)
    other_data = run("other_data", sets=_other_audio(noise_sets, tmp_path / "other"))
    for other in (seeded, other_data):
        assert [_adopted(other, 1), _adopted(other, 2)] == [None, None], other.name
        assert all((other / f"phase{phase}" / "phase_key.txt").read_text() != key[phase] for phase in (1, 2))
    # The same continued phase 2 (config, labels, K, steps) after another phase 1: trained again.
    after_other = run("after_other", first_k=14)
    assert _adopted(after_other, 2) is None
    config = yaml.safe_load((after_other / "phase2" / "train.yaml").read_text())
    ours = yaml.safe_load((first / "phase2" / "train.yaml").read_text())
    differs = {k for k in set(config) | set(ours) if config.get(k) != ours.get(k)}
    assert differs <= {"output_dir", "snapshot_prefix", "warm_start_from", "token_list", "train_data_path_and_name_and_type",
                       "valid_data_path_and_name_and_type", "train_shape_file", "valid_shape_file"}, differs
    assert (after_other / "phase2" / "phase_key.txt").read_text() != key[2]


def test_a_resumed_phase_keeps_the_cost_of_the_work_before_its_interruption(tmp_path, noise_sets, label_maker,
                                                                             monkeypatch):
    """A phase interrupted after its first resumable checkpoint (step 3 of 6) and resumed counts
    what it cost in all: the same audio as an uninterrupted run, and about its CPU seconds."""
    from espnet_hubert_ae.pretrain.task import PhaseTrainer

    strategy = write_schedule(tmp_path, {"name": "resumed", "lr": {"warmup": 2},
                                         "phases": [{"steps": 6, "targets": "mfcc", "k": 12}]})
    epoch = PhaseTrainer.train_one_epoch.__func__
    epochs = []

    def interrupted(cls, *args, **kwargs):  # the second ESPnet epoch (steps 4-6) fails as it starts
        epochs.append(1)
        if len(epochs) == 2:
            raise RuntimeError("interrupted")
        return epoch(cls, *args, **kwargs)

    monkeypatch.setattr(PhaseTrainer, "train_one_epoch", classmethod(interrupted))
    job = job_for(tmp_path / "a", noise_sets, strategy)
    with pytest.raises(PretrainError, match="interrupted"):
        run_schedule(job, make_labels=label_maker)
    monkeypatch.undo()
    phase = tmp_path / "a" / "exp" / "resumed_tiny" / "phase1"
    assert (phase / "checkpoint.pth").is_file() and not (phase / ".done").exists()
    run_schedule(job, make_labels=label_maker)
    assert "The training was resumed" in (phase / "train.log").read_text()
    fresh = run_schedule(job_for(tmp_path / "b", noise_sets, strategy), make_labels=label_maker) / "phase1"
    assert "The training was resumed" not in (fresh / "train.log").read_text()

    resumed_cost, fresh_cost = (json.loads((p / "summary.json").read_text())["cost"]["training"] for p in (phase, fresh))
    print(f"resumed {resumed_cost}, uninterrupted {fresh_cost}")
    # The same 6 batches (ESPnet seeds each epoch): the audio is counted once each, whatever the interruption.
    assert resumed_cost["audio_s"] == pytest.approx(fresh_cost["audio_s"], abs=0.01)
    # CPU seconds of the two parts against one run, within a tolerance: a loaded machine moves them,
    # and what the first part did after its last update (validation, the checkpoint) is not in
    # that checkpoint's record (measured on this 6-step phase: 1.6 to 1.9 CPU s against 1.9 to 2.1).
    assert resumed_cost["cpu_s"] == pytest.approx(fresh_cost["cpu_s"], rel=0.4)
