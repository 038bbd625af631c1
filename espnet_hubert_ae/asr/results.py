"""What stages 8-9 left in a recipe's exp/ directory, as records and as the report's JSON.

Every evaluation (one upstream, one downstream, its seeds) left a ``summary.json`` (see
:mod:`espnet_hubert_ae.asr.seeds`) under ``exp/asr_superb/`` (frozen ASR), ``exp/pr/``
(phoneme recognition) or ``exp/finetune/``. :func:`collect_downstream` reads them back and
names each by what it evaluated: a control (``fbank``, ``random_init``), or the pretraining
run and step of a registered checkpoint. :func:`downstream_json` gives the ``asr`` and ``pr``
parts of ``exp/report/results.json``: per run (its final checkpoint) and per control, the
mean and standard deviation over the seeds on one evaluation set.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

from espnet_hubert_ae.asr.seeds import SUMMARY
from espnet_hubert_ae.defaults import ANALYSIS_SET
from espnet_hubert_ae.upstream.registry import CheckpointRef, Registry, read_registry

logger = logging.getLogger(__name__)

KIND_ROOTS = {"superb": "asr_superb", "pr": "pr", "finetune": "finetune"}


@dataclasses.dataclass
class DownstreamResult:
    """One evaluation over its seeds."""

    kind: str  # superb / pr / finetune
    upstream: str
    control: str | None  # fbank / random_init / None
    run: str | None  # pretraining run of a registered checkpoint
    step: int | None
    train_set: str
    reset_top_layers: int | None  # fine-tuning only
    seeds: list[int]
    sets: dict[str, dict]  # eval set -> {wer/cer/per: {mean, std, per_seed}, empty_hyps, num_utts, ...}
    config: str  # template name
    directory: Path
    checkpoint_sha256: str | None = None  # the evaluated weights' digest (None: FBANK)

    @property
    def name(self) -> str:
        """The control's name, else the run's, else the upstream as given."""
        return self.control or self.run or self.upstream


def _registry_entry(summary: dict, registry: Registry) -> CheckpointRef | None:
    upstream = str(summary.get("upstream"))
    if upstream in registry:
        return registry[upstream]
    checkpoint = summary.get("checkpoint") or (summary.get("identity") or {}).get("checkpoint")
    return registry.registered(checkpoint) if checkpoint else None


def collect_downstream(exp_root: str | Path, registry: Registry | None = None) -> list[DownstreamResult]:
    """Every finished evaluation under ``exp_root`` (a recipe's exp/), named with ``registry``."""
    registry = registry if registry is not None else Registry()
    found = []
    for kind, folder in KIND_ROOTS.items():
        for path in sorted((Path(exp_root) / folder).glob(f"**/{SUMMARY}")):
            summary = json.loads(path.read_text(encoding="utf-8"))
            entry = _registry_entry(summary, registry)
            reset = summary.get("reset_top_layers")
            found.append(DownstreamResult(
                kind=summary.get("kind", kind), upstream=str(summary.get("upstream")), control=summary.get("control"),
                run=entry.run if entry else None, step=entry.step if entry else None,
                train_set=Path(str(summary.get("train_set", "?"))).name,
                reset_top_layers=None if reset is None else int(reset), seeds=list(summary.get("seeds", [])),
                sets=summary.get("sets", {}), config=Path(str(summary.get("template", "?"))).stem,
                directory=path.parent, checkpoint_sha256=(summary.get("identity") or {}).get("sha256"),
            ))
    return found


def downstream_json(results: list[DownstreamResult], registry: Registry, eval_set: str = ANALYSIS_SET) -> dict:
    """``{"asr": {...}, "pr": {...}}`` of results.json: per control and per run's final
    checkpoint, on ``eval_set``. Where one name was evaluated with several configs, the most
    recently finished evaluation is kept (a warning says so)."""
    finals = {ref.checkpoint for ref in registry.last_per_run().values()}
    out: dict[str, dict] = {"asr": {}, "pr": {}}
    chosen: dict[tuple[str, str], DownstreamResult] = {}
    for result in results:
        section = {"superb": "asr", "pr": "pr"}.get(result.kind)
        if section is None or eval_set not in result.sets:
            continue
        if result.control is None:
            entry = registry.get(result.upstream)
            if result.run is None or entry is None or entry.checkpoint not in finals:
                continue
        key = (section, result.name)
        if key in chosen:
            logger.warning("%s: %s evaluated in %s and %s; keeping the newer", section, result.name,
                           chosen[key].directory, result.directory)
            if (chosen[key].directory / SUMMARY).stat().st_mtime > (result.directory / SUMMARY).stat().st_mtime:
                continue
        chosen[key] = result
    for (section, name), result in sorted(chosen.items()):
        scores = result.sets[eval_set]
        rates = ("cer", "wer") if section == "asr" else ("per",)
        out[section][name] = {
            "set": eval_set, **{r: {k: scores[r][k] for k in ("mean", "std")} for r in rates},
            "empty_hyps": scores["empty_hyps"], "seeds": result.seeds,
            "upstream": result.upstream, "step": result.step, "num_utts": scores["num_utts"],
            "empty_hyps_per_seed": scores["empty_hyps_per_seed"], "config": result.config,
        }
    return out


def downstream_results(exp_root: str | Path = "exp", eval_set: str = ANALYSIS_SET) -> dict:
    """The ``asr`` and ``pr`` parts of results.json for a recipe's exp/ directory."""
    registry_path = Path(exp_root) / "upstreams.json"
    registry = read_registry(registry_path) if registry_path.is_file() else Registry()
    return downstream_json(collect_downstream(exp_root, registry), registry, eval_set)
