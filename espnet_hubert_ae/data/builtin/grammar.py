"""Sentences of the built-in corpus: a small English grammar over a vocabulary of a few hundred words.

The grammar is a hand-written context-free grammar with agreement (singular/plural subjects,
present/past/future tense, negation, modals, questions, numbers from two to ninety-nine, relative
place and time phrases, two clauses joined by a conjunction). Every word is spelt out in the
tables below; nothing comes from a text corpus. Sentences are lists of upper-case words
(apostrophes allowed, no punctuation), ready to be a transcript.

All randomness comes from the ``random.Random`` passed in, so a sentence is a pure function of
the generator's state.
"""

from __future__ import annotations

import random
from typing import Callable

# --- vocabulary -----------------------------------------------------------------------------

# Nouns with an irregular plural are written "SINGULAR/PLURAL".
NOUNS = """
    APPLE BANANA BASKET BELL BICYCLE BIRD BOAT BOOK BOTTLE BOX/BOXES BRIDGE BRUSH/BRUSHES
    BUCKET CAKE CAMERA CANDLE CAR CARPET CASTLE CAT CHAIR CHILD/CHILDREN CLOCK CLOUD COAT
    COOKIE CUP DESK DOCTOR DOG DOOR DRAGON DRUM DUCK EGG ENGINE FARMER FENCE FIELD FISH/FISH
    FLAG FLOWER FOREST FOX/FOXES FRIEND GARDEN GATE GIFT GLASS/GLASSES GOAT GUITAR HAT HILL
    HORSE HOUSE KETTLE KEY KING KITCHEN KITE LADDER LAKE LAMP LEAF/LEAVES LEMON LETTER
    LIBRARY/LIBRARIES LION MACHINE MAP MARKET MIRROR MONKEY MOUNTAIN MOUSE/MICE NEIGHBOUR
    NURSE ORANGE PAINTER PARCEL PENCIL PIANO PICTURE PILOT PLATE POCKET POTATO/POTATOES
    QUEEN RABBIT RADIO RIVER ROAD ROBOT ROCK ROOF ROOM SAILOR SANDWICH/SANDWICHES SCHOOL
    SHEEP/SHEEP SHELF/SHELVES SHIP SHOE SINGER SISTER SOLDIER SPOON STAR STONE STORY/STORIES
    STREET STUDENT TABLE TEACHER TICKET TIGER TOMATO/TOMATOES TOWER TOWN TRAIN TREE TRUCK
    UMBRELLA VILLAGE WAGON WALL WATCH/WATCHES WINDOW WOLF/WOLVES WORKER
""".split()

# Places a thing can be in, on, near...: a subset of the nouns, used after prepositions.
PLACES = """
    BASKET BOAT BOX BRIDGE CASTLE CAR FIELD FOREST GARDEN GATE HILL HOUSE KITCHEN LAKE
    LIBRARY MARKET MOUNTAIN RIVER ROAD ROOF ROOM SCHOOL SHELF SHIP STREET TABLE TOWER TOWN
    TRAIN TREE TRUCK VILLAGE WAGON WALL WINDOW DESK DOOR FENCE
""".split()

NAMES = """
    ANNA BEN CARLA DAVID EMMA FRANK GRACE HENRY ISABEL JACK KAREN LUCAS MARIA NATHAN OLIVIA
    PETER RACHEL SAMUEL TINA VICTOR WENDY ALICE OSCAR HELEN MARTIN SOPHIE THOMAS LAURA
""".split()

ADJECTIVES = """
    ANGRY BIG BLACK BLUE BRAVE BRIGHT BROWN BUSY CHEERFUL CLEAN CLEVER COLD CURIOUS DARK
    DIRTY EMPTY FAMOUS FAST FRIENDLY FULL GENTLE GOLDEN GREEN GREY HAPPY HEAVY HUNGRY LARGE
    LAZY LITTLE LONG LOUD LUCKY NARROW NEW NOISY OLD ORANGE PINK POLITE PURPLE QUIET RED
    ROUND SAD SHINY SHORT SILLY SLEEPY SLOW SMALL SOFT STRANGE STRONG TALL TINY TIRED WARM
    WEALTHY WET WHITE WIDE WILD WOODEN YELLOW YOUNG
""".split()

# Transitive verbs: "BASE THIRD_PERSON PAST" (the third person is derived when left out).
TRANSITIVE_VERBS = [
    "ANSWER ANSWERS ANSWERED", "BRING BRINGS BROUGHT", "BUILD BUILDS BUILT", "BUY BUYS BOUGHT",
    "CARRY CARRIES CARRIED", "CATCH CATCHES CAUGHT", "CHASE CHASES CHASED", "CLEAN CLEANS CLEANED",
    "COUNT COUNTS COUNTED", "DRAW DRAWS DREW", "DROP DROPS DROPPED", "FIND FINDS FOUND",
    "FIX FIXES FIXED", "FOLLOW FOLLOWS FOLLOWED", "HEAR HEARS HEARD", "HELP HELPS HELPED",
    "HIDE HIDES HID", "HOLD HOLDS HELD", "KEEP KEEPS KEPT", "KNOW KNOWS KNEW", "LIKE LIKES LIKED",
    "LOSE LOSES LOST", "LOVE LOVES LOVED", "MAKE MAKES MADE", "MEET MEETS MET", "MISS MISSES MISSED",
    "MOVE MOVES MOVED", "NEED NEEDS NEEDED", "OPEN OPENS OPENED", "PAINT PAINTS PAINTED",
    "PICK PICKS PICKED", "PULL PULLS PULLED", "PUSH PUSHES PUSHED", "READ READS READ",
    "REMEMBER REMEMBERS REMEMBERED", "SEE SEES SAW", "SELL SELLS SOLD", "SEND SENDS SENT",
    "SHOW SHOWS SHOWED", "STEAL STEALS STOLE", "TAKE TAKES TOOK", "THROW THROWS THREW",
    "TOUCH TOUCHES TOUCHED", "VISIT VISITS VISITED", "WANT WANTS WANTED", "WASH WASHES WASHED",
    "WATCH WATCHES WATCHED", "WRAP WRAPS WRAPPED",
]

INTRANSITIVE_VERBS = [
    "ARRIVE ARRIVES ARRIVED", "CRY CRIES CRIED", "DANCE DANCES DANCED", "FALL FALLS FELL",
    "JUMP JUMPS JUMPED", "LAUGH LAUGHS LAUGHED", "LISTEN LISTENS LISTENED", "REST RESTS RESTED",
    "RUN RUNS RAN", "SING SINGS SANG", "SIT SITS SAT", "SLEEP SLEEPS SLEPT", "SMILE SMILES SMILED",
    "STAY STAYS STAYED", "SWIM SWIMS SWAM", "TRAVEL TRAVELS TRAVELLED", "WAIT WAITS WAITED",
    "WAKE WAKES WOKE", "WALK WALKS WALKED", "WORK WORKS WORKED",
]

PREPOSITIONS = "ABOVE ACROSS AROUND BEHIND BELOW BESIDE IN INSIDE NEAR ON OUTSIDE UNDER".split()
ADVERBS = """
    AGAIN ALWAYS CAREFULLY EASILY FINALLY GENTLY HAPPILY LOUDLY NEVER OFTEN QUICKLY QUIETLY SLOWLY SOMETIMES
""".split()
PAST_TIMES = ["YESTERDAY", "LAST NIGHT", "LAST WEEK", "THIS MORNING", "A LONG TIME AGO", "ON MONDAY", "ON FRIDAY"]
PRESENT_TIMES = ["EVERY DAY", "EVERY MORNING", "ON SUNDAYS", "AT NIGHT", "IN THE EVENING", "IN WINTER", "IN SUMMER"]
FUTURE_TIMES = ["TOMORROW", "NEXT WEEK", "ON SATURDAY", "SOON", "LATER TODAY", "NEXT YEAR"]
CONJUNCTIONS = "AND BUT BECAUSE WHEN WHILE SO ALTHOUGH UNTIL".split()
MODALS = "CAN COULD MUST SHOULD MIGHT WOULD".split()
SINGULAR_DETERMINERS = "THE A THIS THAT EVERY MY YOUR HIS HER OUR THEIR".split()
PLURAL_DETERMINERS = "THE THESE THOSE SOME MANY MY YOUR OUR THEIR HIS HER".split()
TENSES = ["past", "past", "present", "present", "negative_past", "negative_present", "future"]

UNITS = "ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()
TEENS = "TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN SIXTEEN SEVENTEEN EIGHTEEN NINETEEN".split()
TENS = "TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()

# Pronoun subjects: (word, person-number) where "3S" takes the -S verb form.
SUBJECT_PRONOUNS = [("I", "1S"), ("YOU", "2"), ("HE", "3S"), ("SHE", "3S"), ("WE", "1P"), ("THEY", "3P")]
OBJECT_PRONOUNS = "ME YOU HIM HER US THEM IT".split()
CONTRACTED_BE = {"I": "I'M", "YOU": "YOU'RE", "HE": "HE'S", "SHE": "SHE'S", "WE": "WE'RE", "THEY": "THEY'RE"}


def _plural(noun: str) -> str:
    if noun.endswith(("S", "SH", "CH", "X")):
        return noun + "ES"
    if noun.endswith("Y") and noun[-2] not in "AEIOU":
        return noun[:-1] + "IES"
    return noun + "S"


def _nouns() -> dict[str, str]:
    table = {}
    for entry in NOUNS:
        singular, _, plural = entry.partition("/")
        table[singular] = plural or _plural(singular)
    return table


NOUN_PLURALS = _nouns()


def _verbs(entries: list[str]) -> list[tuple[str, str, str]]:
    return [tuple(entry.split()) for entry in entries]  # type: ignore[misc]


TRANSITIVE = _verbs(TRANSITIVE_VERBS)
INTRANSITIVE = _verbs(INTRANSITIVE_VERBS)


def number_words(n: int) -> list[str]:
    """Spell 1..99 as words ("TWENTY THREE")."""
    if not 1 <= n <= 99:
        raise ValueError(f"number {n} outside 1..99")
    if n < 10:
        return [UNITS[n - 1]]
    if n < 20:
        return [TEENS[n - 10]]
    tens, units = divmod(n, 10)
    return [TENS[tens - 2]] + ([UNITS[units - 1]] if units else [])


class SentenceGenerator:
    """Draws grammatical sentences; every choice is made with the ``rng`` given to ``sentence``."""

    def sentence(self, rng: random.Random) -> list[str]:
        forms: list[tuple[float, Callable[[random.Random], list[str]]]] = [
            (0.30, self._statement),
            (0.20, self._compound),
            (0.12, self._timed_statement),
            (0.14, self._question),
            (0.08, self._there_is),
            (0.08, self._description),
            (0.08, self._modal_statement),
        ]
        weights = [w for w, _ in forms]
        form = rng.choices([f for _, f in forms], weights=weights)[0]
        return " ".join(form(rng)).split()

    # -- noun phrases --

    def _noun_phrase(self, rng: random.Random, plural: bool | None = None) -> tuple[list[str], bool]:
        """A noun phrase and whether it is plural."""
        if plural is None:
            plural = rng.random() < 0.35
        noun = rng.choice(list(NOUN_PLURALS))
        adjectives = rng.sample(ADJECTIVES, k=rng.choices([0, 1, 2], weights=[4, 5, 1])[0])
        if plural:
            count = rng.random()
            if count < 0.35:
                determiner = number_words(rng.randint(2, 99))
            else:
                determiner = [rng.choice(PLURAL_DETERMINERS)]
            return determiner + adjectives + [NOUN_PLURALS[noun]], True
        determiner = rng.choice(SINGULAR_DETERMINERS)
        if determiner == "A" and (adjectives or [noun])[0][0] in "AEIOU":
            determiner = "AN"
        return [determiner] + adjectives + [noun], False

    def _subject(self, rng: random.Random) -> tuple[list[str], str]:
        """A subject and its person-number ("1S", "2", "3S", "1P", "3P")."""
        roll = rng.random()
        if roll < 0.25:
            word, person = rng.choice(SUBJECT_PRONOUNS)
            return [word], person
        if roll < 0.45:
            return [rng.choice(NAMES)], "3S"
        phrase, plural = self._noun_phrase(rng)
        return phrase, "3P" if plural else "3S"

    def _object(self, rng: random.Random) -> list[str]:
        roll = rng.random()
        if roll < 0.12:
            return [rng.choice(OBJECT_PRONOUNS)]
        if roll < 0.25:
            return [rng.choice(NAMES)]
        return self._noun_phrase(rng)[0]

    def _place(self, rng: random.Random) -> list[str]:
        place = rng.choice(PLACES)
        determiner = rng.choice(["THE", "THE", "A", "MY", "OUR", "THEIR"])
        if determiner == "A" and place[0] in "AEIOU":
            determiner = "AN"
        return [rng.choice(PREPOSITIONS), determiner, place]

    # -- verb phrases --

    def _verb_phrase(self, rng: random.Random, person: str, tense: str) -> list[str]:
        transitive = rng.random() < 0.65
        base, third, past = rng.choice(TRANSITIVE if transitive else INTRANSITIVE)
        if tense == "past":
            words = [past]
        elif tense == "present":
            words = [third if person == "3S" else base]
        elif tense == "negative_past":
            words = [rng.choice(["DIDN'T", "DID NOT"]), base]
        elif tense == "negative_present":
            words = ["DOESN'T" if person == "3S" else "DON'T", base]
        elif tense == "future":
            words = [rng.choice(["WILL", "WON'T"]), base]
        else:  # modal
            words = [rng.choice(MODALS + ["CAN'T"]), base]
        if transitive:
            words += self._object(rng)
        if rng.random() < 0.45:
            words += self._place(rng)
        if rng.random() < 0.25:
            words.append(rng.choice(ADVERBS))
        return words

    def _clause(self, rng: random.Random, tense: str | None = None) -> list[str]:
        tense = tense or rng.choice(TENSES)
        subject, person = self._subject(rng)
        return subject + self._verb_phrase(rng, person, tense)

    # -- sentence forms --

    def _statement(self, rng: random.Random) -> list[str]:
        return self._clause(rng)

    def _compound(self, rng: random.Random) -> list[str]:
        tense = rng.choice(["past", "present", "future"])
        return self._clause(rng, tense) + [rng.choice(CONJUNCTIONS)] + self._clause(rng, tense)

    def _timed_statement(self, rng: random.Random) -> list[str]:
        tense, times = rng.choice([("past", PAST_TIMES), ("present", PRESENT_TIMES), ("future", FUTURE_TIMES)])
        time = rng.choice(times).split()
        clause = self._clause(rng, tense)
        return time + clause if rng.random() < 0.5 else clause + time

    def _modal_statement(self, rng: random.Random) -> list[str]:
        return self._clause(rng, "modal")

    def _there_is(self, rng: random.Random) -> list[str]:
        phrase, plural = self._noun_phrase(rng)
        verb = rng.choice(["ARE", "WERE"] if plural else ["IS", "WAS"])
        return ["THERE", verb] + phrase + self._place(rng)

    def _description(self, rng: random.Random) -> list[str]:
        subject, person = self._subject(rng)
        adjective = rng.choice(ADJECTIVES)
        if len(subject) == 1 and subject[0] in CONTRACTED_BE and rng.random() < 0.5:
            words = [CONTRACTED_BE[subject[0]], rng.choice(["VERY", "QUITE", "NOT", "SO"]), adjective]
        else:
            verb = {"1S": "AM", "3S": "IS"}.get(person, "ARE")
            if rng.random() < 0.4:
                verb = "WAS" if person in ("1S", "3S") else "WERE"
            words = subject + [verb, rng.choice(["VERY", "QUITE", "NOT", "REALLY", "SO"]), adjective]
        if rng.random() < 0.4:
            words += ["TODAY" if rng.random() < 0.5 else "AGAIN"]
        return words

    def _question(self, rng: random.Random) -> list[str]:
        subject, person = self._subject(rng)
        base, _, _ = rng.choice(TRANSITIVE)
        kind = rng.random()
        if kind < 0.3:
            auxiliary = rng.choice(["DID", "WILL", "CAN", "COULD"] + (["DOES"] if person == "3S" else ["DO"]))
            return [auxiliary] + subject + [base] + self._object(rng) + (self._place(rng) if rng.random() < 0.4 else [])
        if kind < 0.55:
            plural_noun = NOUN_PLURALS[rng.choice(list(NOUN_PLURALS))]
            return ["HOW", "MANY", plural_noun, "DID"] + subject + [base]
        if kind < 0.8:
            asker = rng.choice(["WHY", "WHERE", "WHEN", "HOW"])
            return [asker, "DID"] + subject + [base] + self._object(rng)
        phrase, plural = self._noun_phrase(rng)
        return ["WHERE", "ARE" if plural else "IS"] + phrase


QUESTION_OPENERS = frozenset("DID DOES DO WILL CAN COULD HOW WHY WHERE WHEN".split())


def is_question(words) -> bool:
    """Whether a generated sentence is a question (it is then synthesised with a question's intonation)."""
    return bool(words) and words[0] in QUESTION_OPENERS


def vocabulary() -> set[str]:
    """Every word the grammar can produce."""
    words: set[str] = set()
    for entry in NOUN_PLURALS.items():
        words.update(entry)
    tables = (NAMES, ADJECTIVES, PREPOSITIONS, ADVERBS, CONJUNCTIONS, MODALS, UNITS, TEENS, TENS, OBJECT_PRONOUNS)
    for table in tables + (SINGULAR_DETERMINERS, PLURAL_DETERMINERS):
        words.update(table)
    for verbs in (TRANSITIVE, INTRANSITIVE):
        for forms in verbs:
            words.update(forms)
    for phrase in PAST_TIMES + PRESENT_TIMES + FUTURE_TIMES:
        words.update(phrase.split())
    words.update(word for word, _ in SUBJECT_PRONOUNS)
    words.update(CONTRACTED_BE.values())
    words.update(
        "AN DID DOES DO DIDN'T NOT "
        "DOESN'T DON'T WILL WON'T CAN'T THERE IS ARE WAS WERE AM VERY QUITE REALLY SO TODAY AGAIN HOW "
        "WHY WHERE WHEN".split()
    )
    return words
