"""Stage 3: phone/word alignments (CTM) of the analysis sets, written into the stage 2 sets.

    # LibriSpeech: Montreal-Forced-Aligner TextGrids -> dump/raw/<set>/{phones,words}.ctm
    python -m espnet_hubert_ae.bin.prepare_alignments --data librispeech --alignments /corpora/mfa_librispeech \\
        --sets dev_clean test_clean
    # built-in corpus: the synthesiser's timings (stage 1) -> dump/raw/<set>/, checked to tile every utterance
    python -m espnet_hubert_ae.bin.prepare_alignments --data builtin --sets dev_clean test_clean

Alignments have one home, the stage 2 set (for its kept utterances only); a set that stage 2
rewrote loses them until this stage runs again. A set missing from ``--dumpdir`` (an optional
set the corpus lacks) is skipped with a note.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_hubert_ae.data.alignments import TEXTGRID_TOLERANCE
from espnet_hubert_ae.utils.cli import cli_main, split_names
from espnet_hubert_ae.utils.fileio import atomic_write_text

logger = logging.getLogger("prepare_alignments")

_DONE = ".alignments.done"  # in dump/raw/<set>/: the TextGrid folder its CTMs were written from
_HOW_TO = (
    "the layerwise analysis (stage 7) needs phone and word alignments of the dev/test sets: "
    "set LIBRISPEECH_ALIGNMENTS in egs2/librilight_ae/db.sh to a folder of Montreal-Forced-Aligner "
    "TextGrids (<utt-id>.TextGrid with 'words' and 'phones' tiers, in any sub-folders) and rerun --stage 3"
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["builtin", "librispeech"], default="builtin")
    p.add_argument("--datadir", type=Path, default=Path("data"), help="stage 1 data directories (built-in timings)")
    p.add_argument("--dumpdir", type=Path, default=Path("dump/raw"), help="stage 2 data directories")
    p.add_argument("--sets", nargs="+", required=True, help="sets to align (names, or one quoted list)")
    p.add_argument("--alignments", default="", help="TextGrid folder (db.sh: LIBRISPEECH_ALIGNMENTS); empty: none")
    p.add_argument("--tolerance", type=float, default=TEXTGRID_TOLERANCE,
                   help="seconds a TextGrid may overrun its audio")
    return p


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sets = split_names(args.sets)
    present = [name for name in sets if (args.dumpdir / name / "wav.scp").is_file()]
    for name in sorted(set(sets) - set(present)):
        logger.info("%s: not in %s (stage 2 skipped it, or has not run): no alignments for it", name, args.dumpdir)
    if args.data == "builtin":
        copy_builtin(args.datadir, args.dumpdir, present)
    else:
        align_librispeech(args.alignments, args.dumpdir, present, tolerance=args.tolerance)
    return 0


def copy_builtin(datadir: Path, dumpdir: Path, sets: list[str]) -> None:
    """The built-in corpus' CTMs (stage 1) for the utterances stage 2 kept; they must tile each one."""
    from espnet_hubert_ae.data.alignments import AlignmentError, check_alignments, copy_alignments

    for name in sets:
        if not (datadir / name / "phones.ctm").is_file():
            raise FileNotFoundError(f"{datadir / name}/phones.ctm is missing: run stage 1 (it writes the timings)")
        copy_alignments(datadir / name, dumpdir / name)
        report = check_alignments(dumpdir / name)
        logger.info(report.summary())
        if not report.ok:
            examples = "; ".join((report.problems + [f"{u}: no alignment" for u in report.missing])[:5])
            raise AlignmentError(f"{dumpdir / name}: alignments do not cover the utterances: {examples}")


def align_librispeech(alignments: str, dumpdir: Path, sets: list[str], *, tolerance: float) -> None:
    """Write CTMs from TextGrids into the stage 2 sets; without TextGrids, warn and skip."""
    from espnet_hubert_ae.data.alignments import align_set, check_alignments, index_textgrids

    if not alignments:
        logger.warning("no alignments (LIBRISPEECH_ALIGNMENTS is empty): skipping stage 3; %s", _HOW_TO)
        return
    root = Path(alignments)
    if not root.is_dir():
        raise FileNotFoundError(f"LIBRISPEECH_ALIGNMENTS={alignments} is not a folder: fix it in egs2/librilight_ae/db.sh")
    fingerprint = f"{root.resolve()} tolerance={tolerance}\n"
    todo = [name for name in sets if not _aligned_already(dumpdir / name, fingerprint)]
    textgrids = index_textgrids(root) if todo else {}
    if todo and not textgrids:
        logger.warning("no *.TextGrid files under %s: skipping stage 3; %s", root, _HOW_TO)
        return
    if todo:
        logger.info("%d TextGrids under %s", len(textgrids), root)
    for name in sets:
        setdir = dumpdir / name
        if name in todo:
            aligned, unaligned = align_set(setdir, textgrids, tolerance=tolerance)
            atomic_write_text(setdir / _DONE, fingerprint)
            _log_unaligned(name, aligned, unaligned, setdir / "unaligned.tsv")
        else:
            logger.info("%s: already aligned from %s (%s)", name, root, setdir / _DONE)
        report = check_alignments(setdir, tolerance=0.02)
        logger.info(report.summary())
        unknown = report.unknown_phones()
        if unknown:
            logger.warning("%s: phone labels outside the 39 ARPAbet phones: %s (not an ARPAbet MFA model?)", name, unknown)
        for problem in report.problems[:10]:
            logger.warning("%s: %s", name, problem)


def _aligned_already(setdir: Path, fingerprint: str) -> bool:
    marker = setdir / _DONE
    return marker.is_file() and marker.read_text(encoding="utf-8") == fingerprint and (setdir / "phones.ctm").is_file()


def _log_unaligned(name: str, aligned: int, unaligned: list[tuple[str, str]], listing: Path) -> None:
    if unaligned:
        logger.warning(
            "%s: %d utterance(s) without a usable TextGrid (e.g. %s: %s), listed in %s",
            name, len(unaligned), *unaligned[0], listing,
        )
    if not aligned:
        logger.warning("%s: no utterance aligned, the analysis cannot use this set; %s", name, _HOW_TO)


if __name__ == "__main__":
    raise SystemExit(main())
