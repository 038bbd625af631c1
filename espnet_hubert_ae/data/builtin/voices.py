"""Speakers of the built-in corpus: fixed combinations of espeak-ng accent, variant, pitch and rate.

A speaker is one espeak-ng English voice (accent) with one voice variant (timbre: ``+m3``,
``+f2``, ``+klatt4``, named variants...), a base pitch, a pitch range, a speaking rate and, for
the harder sets, a noise level. No two speakers of a corpus share an accent-variant pair.

Conditions, like LibriSpeech's clean/other split:

- ``clean``: accents en-us, en-gb, en-gb-x-rp, en-gb-scotland, en-029; rate 140-195 words per
  minute; pitch 25-75; pitch range 25-70; no noise. Training speakers and the dev_clean /
  test_clean speakers are drawn from these conditions but are disjoint sets of speakers.
- ``other``: accents never heard in training (en-gb-x-gbclan, en-gb-x-gbcwmd, en-us-nyc),
  faster speech (195-250 wpm), wider pitch variation (range 70-100, pitch 15-85) and white
  noise at 15-25 dB signal-to-noise ratio.
"""

from __future__ import annotations

import dataclasses
import random

CLEAN_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-029")
OTHER_ACCENTS = ("en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-us-nyc")

# espeak-ng voice variants (`espeak-ng --voices=variant`) that still sound like one human speaker:
# robots, whispers, croaks and duplicates (klatt6 = klatt) are left out.
VARIANTS = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
    "klatt", "klatt2", "klatt3", "klatt4", "klatt5",
    "adam", "Alex", "Alicia", "Andrea", "Andy", "Annie", "aunty", "belinda", "benjamin", "caleb",
    "david", "ed", "edward", "Gene", "grandma", "grandpa", "Jacky", "john", "Lee", "linda", "max",
    "Michael", "Mike", "norbert", "paul", "quincy", "rob", "robert", "shelby", "steph", "travis",
    "victor", "zac",
)  # fmt: skip

# Speakers per group of sets. Training sets share one group of speakers (the fine-tuning
# sets are subsets of train_pretrain); each dev and test set has its own. Many voices per
# evaluation set, because the analysis' phone probe is trained on some of a set's speakers and
# tested on the others: with 10, a few held-out voices decide the score. Clean conditions
# offer 255 accent-variant pairs (120 + 30 + 30 used), other conditions 153 (30 + 30).
SPEAKERS_PER_GROUP = {"train": 120, "dev_clean": 30, "test_clean": 30, "dev_other": 30, "test_other": 30}
GROUP_CONDITIONS = {
    "train": "clean", "dev_clean": "clean", "test_clean": "clean", "dev_other": "other", "test_other": "other",
}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Conditions:
    accents: tuple[str, ...]
    rate: tuple[int, int]  # words per minute
    pitch: tuple[int, int]  # espeak 0-100, 50 = the voice's normal pitch
    pitch_range: tuple[int, int]  # espeak 0-100: 0 monotone, 50 normal
    snr_db: tuple[float, float] | None  # white noise added at this signal-to-noise ratio


CONDITIONS = {
    "clean": Conditions(CLEAN_ACCENTS, (140, 195), (25, 75), (25, 70), None),
    "other": Conditions(OTHER_ACCENTS, (195, 250), (15, 85), (70, 100), (15.0, 25.0)),
}


@dataclasses.dataclass(frozen=True)
class Voice:
    """One speaker: everything that makes its utterances sound like the same person."""

    speaker: str
    accent: str
    variant: str
    rate: int
    pitch: int
    pitch_range: int
    snr_db: float | None = None

    @property
    def espeak_name(self) -> str:
        return f"{self.accent}+{self.variant}"

    def describe(self) -> str:
        noise = "" if self.snr_db is None else f" snr={self.snr_db:.1f}dB"
        return f"{self.espeak_name} rate={self.rate} pitch={self.pitch} range={self.pitch_range}{noise}"


def speaker_groups(seed: int) -> dict[str, list[Voice]]:
    """The speakers of each group ("train", "dev_clean", ...) for a corpus seed; disjoint groups."""
    rng = random.Random(f"builtin-speakers:{seed}")
    pairs = {
        name: rng.sample([(a, v) for a in cond.accents for v in VARIANTS], k=len(cond.accents) * len(VARIANTS))
        for name, cond in CONDITIONS.items()
    }
    groups: dict[str, list[Voice]] = {}
    number = 0
    for group, count in SPEAKERS_PER_GROUP.items():
        condition = GROUP_CONDITIONS[group]
        conditions = CONDITIONS[condition]
        voices = []
        for _ in range(count):
            accent, variant = pairs[condition].pop()  # without replacement: no pair is used twice
            number += 1
            snr = None if conditions.snr_db is None else round(rng.uniform(*conditions.snr_db), 1)
            voices.append(
                Voice(
                    speaker=f"spk{number:03d}",
                    accent=accent,
                    variant=variant,
                    rate=rng.randint(*conditions.rate),
                    pitch=rng.randint(*conditions.pitch),
                    pitch_range=rng.randint(*conditions.pitch_range),
                    snr_db=snr,
                )
            )
        groups[group] = voices
    return groups
