"""Command-line tools stop on Ctrl-C even when started in a script's background."""

from __future__ import annotations

import signal
import subprocess
import sys

TOOL = """
import time
from espnet_hubert_ae.utils.cli import cli_main

@cli_main
def main(argv):
    print("ready", flush=True)
    while True:  # only a signal ends it
        time.sleep(1)

main()
"""


def test_sigint_stops_a_tool_that_inherited_it_ignored():
    # As a job run with "&" by a non-interactive shell (run_job.sh) starts: SIGINT ignored.
    proc = subprocess.Popen([sys.executable, "-c", TOOL], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)  # a guard against a hang: the tool never ends by itself
    finally:
        proc.kill()
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
