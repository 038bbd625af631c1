"""Train one phase of a pretraining schedule: ESPnet's HuBERT training with our hooks.

Takes every ``espnet2.bin.hubert_train`` option, plus the schedule hooks (``--phase_end_step``,
``--snapshot_steps``, ``--warm_start_from``, ``--scheduler phaselr``). The phase runner
(``espnet_hubert_ae.bin.pretrain``) writes the config and calls this once per phase:

    python -m espnet_hubert_ae.bin.hubert_train --config exp/pretrain/TAG/phase1/train.yaml
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from espnet_hubert_ae.pretrain.task import PhaseHubertTask

    PhaseHubertTask.main(cmd=sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
