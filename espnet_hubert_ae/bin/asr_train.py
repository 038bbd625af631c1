"""ESPnet ASR training with the project's downstream components registered.

Takes every ``espnet2.bin.asr_train`` option; adds ``frontend: layer_sum`` (weighted sum of
cached hidden states) and ``encoder: identity`` (a linear CTC probe) to its choices. Stages
8-9 generate the config and call it once per seed:

    python -m espnet_hubert_ae.bin.asr_train --config exp/asr_superb/.../train_config.yaml ...
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    from espnet_hubert_ae.asr.components import train

    train(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
