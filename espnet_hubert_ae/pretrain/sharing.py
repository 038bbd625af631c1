"""Phases that are the same training are trained once: a content address for every phase.

Two strategies often begin alike: ``baseline`` and ``height`` train the same first iteration
(MFCC targets, K=100, 250k steps from scratch, with the same learning-rate curve). A phase's
*key* hashes everything its training depends on -- the ESPnet config with every file it names
replaced by that file's content (data lists, labels, token list) and the phase it continues
replaced by that phase's own key -- and nothing that only names where it runs (output folder,
snapshot file prefix) or what it keeps (the snapshot steps: two runs that train the same phase
and keep different snapshots of it trained the same weights). A run whose phase has the key of
a finished phase of another run that kept every snapshot this run needs adopts that phase: its
files are hard-linked into the run's phase folder (snapshots under this run's names), so every
run folder stays complete on its own and no training is repeated.

The adopting run still counts the phase's cost as its own: it is what the strategy costs.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from espnet_hubert_ae.utils.fileio import done_marker, file_digest
from espnet_hubert_ae.utils.naming import snapshot_file

logger = logging.getLogger(__name__)

PHASE_KEY = "phase_key.txt"
# Config entries that name where a phase runs or what it keeps, not what it trains.
_PLACE_KEYS = ("output_dir", "snapshot_prefix", "snapshot_steps")
# Config entries that name files: their contents count, not their paths.
_FILE_KEYS = ("token_list", "train_shape_file", "valid_shape_file")
_DATA_KEYS = ("train_data_path_and_name_and_type", "valid_data_path_and_name_and_type")


def phase_key(config: dict, previous_phase_dir: Path | None) -> str:
    """The content address of a phase's training, from its ESPnet config (see the module doc)."""
    content = {k: v for k, v in config.items() if k not in _PLACE_KEYS + _FILE_KEYS + _DATA_KEYS}
    for key in _FILE_KEYS:
        files = config.get(key)
        files = files if isinstance(files, list) else [files]
        content[key] = [file_digest(f) for f in files if f]
    for key in _DATA_KEYS:
        content[key] = [[file_digest(path), name, kind] for path, name, kind in config.get(key) or []]
    if config.get("warm_start_from"):
        previous_key = Path(previous_phase_dir) / PHASE_KEY if previous_phase_dir else None
        if previous_key is None or not previous_key.is_file():
            raise FileNotFoundError(f"the phase continued from ({previous_phase_dir}) has no {PHASE_KEY}")
        content["warm_start_from"] = previous_key.read_text().strip()
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def find_trained_phase(exp_root: Path, key: str, exclude: Path, snapshot_steps: Iterable[int] = ()) -> Path | None:
    """A finished phase folder under ``exp_root`` (``<run>/phase<N>``) with this key that kept a
    snapshot at each of ``snapshot_steps``, if any."""
    for path in sorted(Path(exp_root).glob(f"*/phase*/{PHASE_KEY}")):
        phase_dir = path.parent
        if phase_dir.resolve() == Path(exclude).resolve() or not done_marker(phase_dir).is_file():
            continue
        if path.read_text().strip() != key:
            continue
        prefix = json.loads((phase_dir / "summary.json").read_text())["snapshot_prefix"]
        missing = [step for step in snapshot_steps if not (phase_dir / snapshot_file(prefix, step)).is_file()]
        if missing:
            logger.info("%s trained the same phase but kept no snapshot at step(s) %s: not adopted",
                        phase_dir, ", ".join(map(str, missing)))
            continue
        return phase_dir
    return None


def adopt_phase(source: Path, target: Path, source_prefix: str, target_prefix: str,
                snapshot_steps: Iterable[int] | None = None) -> list[str]:
    """Link a finished phase's files into ``target``; snapshots renamed from one prefix to the other.

    With ``snapshot_steps``, only the snapshots at those steps are taken (the source may have
    kept more). Hard links where the file system allows (no copy of the weights), copies
    otherwise. The source's summary and done marker are not taken: the adopting run writes its own.
    """
    target.mkdir(parents=True, exist_ok=True)
    wanted = None if snapshot_steps is None else {snapshot_file(source_prefix, step) for step in snapshot_steps}
    linked = []
    for path in sorted(Path(source).iterdir()):
        if not path.is_file() or path.is_symlink() or path.name in ("summary.json", PHASE_KEY, "train.yaml"):
            continue
        if path.name.startswith("."):
            continue
        if wanted is not None and path.name.startswith(source_prefix) and path.name not in wanted:
            continue
        name = target_prefix + path.name[len(source_prefix):] if path.name.startswith(source_prefix) else path.name
        destination = target / name
        if destination.exists():
            destination.unlink()
        try:
            os.link(path, destination)
        except OSError:
            shutil.copy2(path, destination)
        linked.append(name)
    logger.info("adopted the identical finished phase %s into %s (%d files linked)", source, target, len(linked))
    return linked
