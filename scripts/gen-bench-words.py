#!/usr/bin/env python3
"""Generate the 10,000-entry benchmark word list for rules/bench/dict10k.toml.

Deterministic (fixed seed, no dependencies). Prints one entry per line to stdout:

    scripts/gen-bench-words.py > rules/bench/words-10k.txt

Entries are 5-16 characters, distinct (also ignoring ASCII case): ~85% single pronounceable
pseudo-words, ~10% two-word phrases, ~5% CJK entries (5-8 common Han characters).
"""

import random
import sys

SEED = 0x70116A7E  # "tollgate"
TOTAL = 10_000
N_PHRASES = 1_000  # ~10%
N_CJK = 500  # ~5%

ONSETS = [
    "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
    "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl", "gr", "kl", "pl", "pr", "qu", "sc", "sh",
    "sk", "sl", "sm", "sn", "sp", "st", "str", "th", "tr", "tw", "wh", "",
]
VOWELS = ["a", "e", "i", "o", "u", "y", "ai", "au", "ea", "ee", "ia", "io", "oa", "oo", "ou"]
CODAS = ["", "", "", "n", "r", "s", "l", "m", "t", "x", "nd", "nt", "rk", "st", "ng", "ck"]

# Common Han characters (no punctuation), used for the CJK entries.
HAN = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使"
    "点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明"
    "看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料"
    "象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指"
)


def pseudo_word(rng: random.Random, lo: int, hi: int) -> str:
    """A pronounceable lower-case pseudo-word of lo..=hi letters."""
    target = rng.randint(lo, hi)
    w = ""
    while len(w) < target:
        w += rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
    w = w[:target]
    return w


def main() -> None:
    rng = random.Random(SEED)
    seen: set[str] = set()
    out: list[str] = []

    def add(entry: str) -> bool:
        key = entry.lower()
        if key in seen:
            return False
        seen.add(key)
        out.append(entry)
        return True

    n_words = TOTAL - N_PHRASES - N_CJK
    while len(out) < n_words:
        add(pseudo_word(rng, 5, 16))

    phrases = 0
    while phrases < N_PHRASES:
        a = pseudo_word(rng, 2, 8)
        b = pseudo_word(rng, 2, 8)
        p = f"{a} {b}"
        if 5 <= len(p) <= 16 and add(p):
            phrases += 1

    cjk = 0
    while cjk < N_CJK:
        n = rng.randint(5, 8)
        if add("".join(rng.choice(HAN) for _ in range(n))):
            cjk += 1

    # Interleave deterministically so that phrase / CJK entries are spread through the file.
    rng.shuffle(out)
    assert len(out) == TOTAL and len({e.lower() for e in out}) == TOTAL
    assert all(5 <= len(e) <= 16 for e in out)
    sys.stdout.write("".join(e + "\n" for e in out))


if __name__ == "__main__":
    main()
