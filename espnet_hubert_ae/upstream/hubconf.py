"""The s3prl hub entry ``hubert_ae_local``: a pretraining checkpoint (path or registered name).

Added to ``s3prl.hub`` by :mod:`espnet_hubert_ae.upstream.startup` when s3prl's hub is imported,
so it is seen by ``S3PRLUpstream``, ``S3PRLUpstream.available_names()``, ESPnet's
``S3prlFrontend`` and s3prl's ``run_downstream.py``. Light on purpose: the model code is
imported only when an upstream is built.
"""

from __future__ import annotations

from types import ModuleType

UPSTREAM_NAME = "hubert_ae_local"


def hubert_ae_local(ckpt: str | None = None, *args, config: str | None = None, model_config: str | None = None,
                    refresh: bool = False, sample_rate: int = 16000, registry: str | None = None, **kwargs):
    """Build the upstream for ``ckpt``: a checkpoint ``.pth`` or a name from the upstream registry.

    ``config`` (or ``model_config``, what ``run_downstream.py -g`` passes) overrides the
    ``config.yaml`` expected beside the checkpoint. ``sample_rate`` declares the rate of the
    audio that will be fed (resampled to 16 kHz inside). ``registry`` overrides the registry
    file lookup. ``refresh`` is accepted for s3prl's interface; nothing is ever downloaded.
    """
    from espnet_hubert_ae.upstream.expert import UpstreamExpert
    from espnet_hubert_ae.upstream.registry import resolve_upstream

    if args or kwargs:
        raise TypeError(f"{UPSTREAM_NAME}: unexpected arguments {args or ''} {sorted(kwargs) or ''}".strip())
    checkpoint, config_path = resolve_upstream(ckpt, config=config or model_config, registry=registry)
    return UpstreamExpert(checkpoint, config_path, sample_rate=sample_rate)


def register(hub: ModuleType) -> None:
    """Make ``hubert_ae_local`` one of ``hub``'s entries (``hub`` is the module ``s3prl.hub``)."""
    setattr(hub, UPSTREAM_NAME, hubert_ae_local)
