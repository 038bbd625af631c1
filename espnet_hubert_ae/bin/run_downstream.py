"""s3prl's ``run_downstream.py`` (SUPERB downstream tasks), runnable on the project's pinned stack.

    python -m espnet_hubert_ae.bin.run_downstream -m train -u hubert_ae_local \\
        -k progressive_tiny_120/p4/step120 -d asr -c <s3prl source>/s3prl/downstream/asr/config.yaml -p exp/superb/asr

The task configs (``downstream/asr/config.yaml``, with the LibriSpeech paths and ``char.dict``)
come from s3prl's source tree: the PyPI wheel does not ship them. All arguments are s3prl's own
(``-k`` takes a checkpoint path or a registered upstream name; ``-g`` a config.yaml when it does
not sit beside the checkpoint). s3prl 0.4.18's runner cannot be imported as installed: it needs
``tensorboardX`` (not a dependency of s3prl's wheel) and names that ``huggingface_hub`` 1.x
removed (``HfFolder``, ``Repository``; only its Hugging Face upload/download options use them).
This wrapper supplies stand-ins for exactly those, then runs s3prl's script unchanged.
``hubert_ae_local`` itself needs nothing from here: it is in s3prl's hub in every process
(start-up hook).
"""

from __future__ import annotations

import importlib
import runpy
import sys
import types


class _HubFeatureUnavailable:
    """Stands in for huggingface_hub classes that s3prl imports but this stack no longer has."""

    def __init__(self, *args, **kwargs):
        raise RuntimeError("s3prl's Hugging Face Hub options (--hub huggingface, --push_to_hf_hub) are not "
                           "available with the installed huggingface_hub")

    save_token = get_token = staticmethod(lambda *args, **kwargs: _HubFeatureUnavailable())


def _provide_tensorboardx() -> None:
    """s3prl's runner logs through tensorboardX; torch ships an equivalent SummaryWriter."""
    try:
        importlib.import_module("tensorboardX")
    except ImportError:
        from torch.utils.tensorboard import SummaryWriter

        sys.modules["tensorboardX"] = types.SimpleNamespace(SummaryWriter=SummaryWriter)


def _provide_removed_hub_names() -> None:
    import huggingface_hub

    for name in ("HfFolder", "Repository"):
        if not hasattr(huggingface_hub, name):
            setattr(huggingface_hub, name, _HubFeatureUnavailable)


def main() -> None:
    _provide_tensorboardx()
    _provide_removed_hub_names()
    runpy.run_module("s3prl.run_downstream", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
