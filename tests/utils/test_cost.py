"""Cost records: CPU seconds of the whole process tree, wall seconds beside them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from espnet_hubert_ae.utils.cost import Cost, CostMeter

# A child that keeps a CPU busy for 0.3 s of its own CPU time, then prints that time.
BUSY_CHILD = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3:\n    pass\n" \
             "print(time.process_time())"


def test_a_meter_counts_the_cpu_of_the_children_it_waited_for():
    with CostMeter() as meter:
        child = subprocess.run([sys.executable, "-c", BUSY_CHILD], capture_output=True, text=True, check=True)
    child_cpu = float(child.stdout)
    assert child_cpu >= 0.3
    # This process only waited; the child's CPU seconds are in the record all the same.
    assert meter.cost.cpu_s >= child_cpu
    assert meter.cost.gpu_s == 0.0


def test_gpu_seconds_are_wall_seconds_per_gpu_held():
    with CostMeter(gpus=2) as meter:
        pass
    assert meter.cost.gpu_s == pytest.approx(2 * meter.cost.wall_s)


def test_costs_add_up_field_by_field_and_survive_their_record():
    total = Cost(wall_s=1.0, cpu_s=2.0, audio_s=3.0) + Cost(wall_s=0.5, cpu_s=0.25, gpu_s=4.0)
    assert total == Cost(wall_s=1.5, cpu_s=2.25, gpu_s=4.0, audio_s=3.0)
    assert Cost.from_dict(total.to_dict()) == total and Cost.from_dict(None) == Cost()
