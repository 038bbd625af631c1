"""The job runner (local/run_job.sh): job arrays, logs, failures."""

from __future__ import annotations

import subprocess


def run_job(recipe_dir, *args, env=None):
    return subprocess.run([str(recipe_dir / "local" / "run_job.sh"), *args], capture_output=True, text=True, env=env)


def test_job_array_substitutes_index_and_logs(tmp_path, recipe_dir):
    result = run_job(recipe_dir, "JOB=1:3", str(tmp_path / "log/job.JOB.log"), "bash", "-c", "echo out-JOB > %s/JOB.txt" % tmp_path)
    assert result.returncode == 0, result.stderr
    for i in (1, 2, 3):
        assert (tmp_path / f"{i}.txt").read_text() == f"out-{i}\n"
        log = (tmp_path / f"log/job.{i}.log").read_text()
        assert log.startswith("# bash -c") and "exit code 0" in log


def test_failure_names_the_failed_log(tmp_path, recipe_dir):
    result = run_job(recipe_dir, "JOB=1:2", str(tmp_path / "j.JOB.log"), "bash", "-c", "echo boom-JOB; exit $((JOB - 1))")
    assert result.returncode == 1
    assert "1 of 2 job(s) failed" in result.stderr
    assert str(tmp_path / "j.2.log") in result.stderr and "boom-2" in result.stderr


def test_unknown_backend_is_refused(tmp_path, recipe_dir):
    result = run_job(recipe_dir, "--backend", "pbs", str(tmp_path / "x.log"), "true")
    assert result.returncode == 2 and "unknown backend 'pbs'" in result.stderr


def test_slurm_backend_uses_srun(tmp_path, recipe_dir):
    """With a stand-in srun on PATH, the slurm backend passes resources and the command through."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text('#!/usr/bin/env bash\necho "srun $*"\n')
    (fake / "srun").chmod(0o755)
    import os

    env = dict(os.environ, PATH=f"{fake}:{os.environ['PATH']}")
    result = run_job(recipe_dir, "--backend", "slurm", "--gpu", "2", "--mem", "8G", str(tmp_path / "s.log"), "echo", "hi", env=env)
    assert result.returncode == 0, result.stderr
    log = (tmp_path / "s.log").read_text()
    assert "--gres=gpu:2" in log and "--mem=8G" in log and "echo hi" in log


def test_job_list_runs_only_those_jobs(tmp_path, recipe_dir):
    result = run_job(recipe_dir, "JOB=2,4", str(tmp_path / "l.JOB.log"), "bash", "-c", "echo JOB > %s/JOB.txt; exit $((JOB == 4))" % tmp_path)
    assert result.returncode == 1
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == ["2.txt", "4.txt"]
    assert "1 of 2 job(s) failed" in result.stderr and str(tmp_path / "l.4.log") in result.stderr
    bad = run_job(recipe_dir, "JOB=1-3", str(tmp_path / "b.log"), "true")
    assert bad.returncode == 2 and "bad job list 'JOB=1-3'" in bad.stderr


def test_local_jobs_get_gpus_in_turn(tmp_path, recipe_dir):
    import os

    env = dict(os.environ, CUDA_VISIBLE_DEVICES="3,5,6")
    result = run_job(recipe_dir, "--gpu", "1", "JOB=1:4", str(tmp_path / "g.JOB.log"), "bash", "-c",
                     "echo $CUDA_VISIBLE_DEVICES > %s/JOB.txt" % tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert [(tmp_path / f"{i}.txt").read_text().strip() for i in (1, 2, 3, 4)] == ["3", "5", "6", "3"]
    two = run_job(recipe_dir, "--gpu", "2", "JOB=1:2", str(tmp_path / "h.JOB.log"), "bash", "-c",
                  "echo $CUDA_VISIBLE_DEVICES > %s/h.JOB.txt" % tmp_path, env=env)
    assert two.returncode == 0, two.stderr
    assert [(tmp_path / f"h.{i}.txt").read_text().strip() for i in (1, 2)] == ["3,5", "6,3"]
