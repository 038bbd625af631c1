"""The downstream evaluations of stages 8-9, each over one or more seeds.

- :func:`run_frozen`: a frozen upstream under a trained downstream, SUPERB style:
  character ASR (weighted layer sum, BiLSTM, CTC) or the phoneme-recognition probe (weighted
  layer sum, linear CTC). The template decides where the hidden states come from: a feature
  cache extracted once (``frontend: layer_sum``; the upstream may also be ``fbank``), or the
  live upstream through ESPnet's s3prl frontend and ``hubert_ae_local`` (``frontend: s3prl``).
- :func:`run_finetune`: the whole pretrained encoder trained with CTC, optionally with its
  top N transformer layers re-initialised.

Each writes ``<exp_dir>/seed<N>/`` per seed (see :mod:`espnet_hubert_ae.asr.experiment`) and
``<exp_dir>/summary.{json,md}`` over the seeds (see :mod:`espnet_hubert_ae.asr.seeds`).
A control (``fbank``, ``random_init``) is recorded as such in the summary.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from espnet_hubert_ae.asr.cache import ensure_cache
from espnet_hubert_ae.asr.configs import cached_config, finetune_config, load_yaml, reads_cache, superb_config
from espnet_hubert_ae.asr.decode import check_lm_supported
from espnet_hubert_ae.asr.espnet_run import audio_set, cached_set
from espnet_hubert_ae.asr.experiment import AsrExperiment, check_sets, run_experiment
from espnet_hubert_ae.asr.phones import find_phone_ctm, write_phone_text
from espnet_hubert_ae.asr.reset import write_init_state
from espnet_hubert_ae.asr.seeds import run_seeds, seed_dir
from espnet_hubert_ae.asr.sources import FBANK, feature_source
from espnet_hubert_ae.asr.tokens import CHARS, PHONES, Units
from espnet_hubert_ae.defaults import CACHE_DTYPE, SEEDS
from espnet_hubert_ae.utils.fileio import done_marker


def run_checkpoints(run: str, count: int = 1, registry: str | os.PathLike | None = None) -> list[str]:
    """Registered names of ``count`` checkpoints of pretraining run ``run`` (its run tag),
    spread evenly over its steps (the nearest to ``k / count`` of the last step, k = 1..count),
    the last one included; fewer when the run kept fewer. The untrained step-0 snapshot is left
    out: it is the random-init control. Checkpoints are ordered by phase, then step."""
    from espnet_hubert_ae.upstream.registry import open_registry

    if count < 1:
        raise ValueError(f"--checkpoints_per_run must be at least 1, not {count}")
    registered = open_registry(registry)
    last = registered.last(run)  # fails listing the registered runs when ``run`` has none
    refs = sorted((r for r in registered.values() if r.run == run and r.step), key=lambda r: (r.phase, r.step))
    chosen = {last.name}
    for k in range(1, count):
        target = last.step * k / count
        chosen.add(min(refs, key=lambda r: (abs(r.step - target), r.phase, r.step)).name)
    return [r.name for r in refs if r.name in chosen] or [last.name]


def _transcripts(datadirs: Sequence[Path], units: Units, exp_dir: Path,
                 alignment_dirs: Sequence[Path]) -> dict[Path, Path]:
    """Data directory -> its reference transcripts in ``units`` (phones are written into the
    experiment from the phone alignments)."""
    if units is CHARS:
        return {d: d / "text" for d in datadirs}
    return {d: write_phone_text(d, find_phone_ctm(d, alignment_dirs), exp_dir / "phones" / d.name / "text")
            for d in datadirs}


def run_frozen(
    upstream: str,
    template: str | os.PathLike,
    exp_dir: str | os.PathLike,
    train_dir: Path,
    valid_dir: Path,
    eval_dirs: Sequence[Path],
    *,
    units: Units = CHARS,
    seeds: Sequence[int] = SEEDS,
    kind: str | None = None,
    control: str | None = None,
    cache_root: str | os.PathLike = "exp/features",
    dtype: str = CACHE_DTYPE,
    token_text_dirs: Sequence[Path] = (),
    alignment_dirs: Sequence[Path] = (),
    upstream_name: str = "hubert_ae_local",
    ngpu: int = 0,
    lm: str | None = None,
) -> dict:
    """A downstream on a frozen upstream (registered name, checkpoint path or ``fbank``),
    trained once per seed; returns the summary over the seeds."""
    from espnet_hubert_ae.upstream.registry import resolve_upstream

    check_lm_supported(lm)
    exp_dir = Path(exp_dir)
    datadirs = [Path(train_dir), Path(valid_dir), *map(Path, eval_dirs)]
    check_sets(*datadirs, labelled=units is CHARS)
    config_template = load_yaml(template)
    texts = _transcripts(datadirs, units, exp_dir, alignment_dirs)
    info = {"kind": kind or ("pr" if units is PHONES else "superb"), "upstream": upstream,
            "control": FBANK if upstream == FBANK else control, "units": units.name, "template": str(template),
            "train_set": str(train_dir)}
    if reads_cache(config_template):
        source = feature_source(upstream)
        caches = {d: ensure_cache(source, d, cache_root, dtype) for d in datadirs}
        first = caches[datadirs[0]]
        config = cached_config(config_template, first.num_layers, first.layer_dim)
        sets = [cached_set(d, caches[d], texts[d]) for d in datadirs]
        info.update(input="cached", identity=first.identity,
                    cache={d.name: str(caches[d].directory) for d in datadirs})
    else:
        if upstream == FBANK:
            raise ValueError(f"{template}: the fbank control needs a cached-feature template (frontend: layer_sum)")
        checkpoint, upstream_config = resolve_upstream(upstream)
        # The absolute checkpoint path goes into the config: the training process then needs
        # no registry lookup, and the experiment stays valid if names are registered again.
        config = superb_config(config_template, str(checkpoint.resolve()), upstream_config, upstream_name)
        sets = [audio_set(d, texts[d]) for d in datadirs]
        info.update(input="live", checkpoint=str(checkpoint))
    extra_texts = list(texts.values())[1:] if units is PHONES else [d / "text" for d in map(Path, token_text_dirs)]

    def run_one(seed: int):
        return run_experiment(AsrExperiment(
            seed_dir(exp_dir, seed), config, sets[0], sets[1], sets[2:], units=units,
            token_text_files=extra_texts, ngpu=ngpu, seed=seed, info={**info, "seed": seed},
        ))

    return run_seeds(run_one, exp_dir, seeds, info)


def run_finetune(
    upstream: str,
    template: str | os.PathLike,
    exp_dir: str | os.PathLike,
    train_dir: Path,
    valid_dir: Path,
    eval_dirs: Sequence[Path],
    *,
    reset_top_layers: int = 0,
    seeds: Sequence[int] = SEEDS,
    control: str | None = None,
    token_text_dirs: Sequence[Path] = (),
    ngpu: int = 0,
    lm: str | None = None,
) -> dict:
    """CTC fine-tuning of a pretrained checkpoint, its top ``reset_top_layers`` layers reset
    (with the seed's initialisation), once per seed; returns the summary over the seeds."""
    from espnet_hubert_ae.upstream.registry import resolve_upstream

    check_lm_supported(lm)
    checkpoint, pretrain_config = resolve_upstream(upstream)
    exp_dir = Path(exp_dir)
    config = finetune_config(load_yaml(template), pretrain_config)
    datadirs = [Path(train_dir), Path(valid_dir), *map(Path, eval_dirs)]
    check_sets(*datadirs)
    sets = [audio_set(d) for d in datadirs]
    info = {"kind": "finetune", "upstream": upstream, "control": control, "units": CHARS.name,
            "checkpoint": str(checkpoint), "template": str(template), "train_set": str(train_dir),
            "reset_top_layers": reset_top_layers}

    def run_one(seed: int):
        run_dir = seed_dir(exp_dir, seed)
        init_state = run_dir / "init_encoder.pth"
        reset_keys: list[str] = []
        if not done_marker(run_dir / "train").exists():
            reset_keys = write_init_state(init_state, checkpoint, pretrain_config, reset_top_layers, seed)
        return run_experiment(AsrExperiment(
            run_dir, config, sets[0], sets[1], sets[2:],
            token_text_files=[d / "text" for d in map(Path, token_text_dirs)],
            init_param=f"{init_state}::encoder", ngpu=ngpu, seed=seed,
            info={**info, "seed": seed, "reset_tensors": len(reset_keys)},
        ))

    return run_seeds(run_one, exp_dir, seeds, info)
