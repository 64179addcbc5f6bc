"""Transcript normalisation for Switchboard-1 (MS-98), Fisher English and Hub5'00 (eval2000).

All three corpora are mapped to one written form, the one the lexicon and LM see:

- lower case, whitespace-separated words;
- non-speech events become one of three noise words (`NOISE_WORDS`):
  `[noise]`, `[laughter]`, `[vocalized-noise]`; silence and aside markers are dropped;
- hesitations and back-channels are spelled one way (`HESITATION_MAP`: `umm` -> `um`,
  `um-hum` -> `mhm`, ...);
- partial words keep a hyphen on the side that was cut off (`ab[solute]-` -> `ab-`,
  `-[th]at` -> `-at`), so the lexicon can treat them apart from whole words;
- laughed words lose the laughter mark (`[laughter-yes]` -> `yes`); mispronounced words
  `[said/meant]` keep the intended word, unless what was said is itself a fragment;
  coinages lose their braces (`{weirdo}` -> `weirdo`); alternate-pronunciation tags go
  (`them_1` -> `them`);
- unintelligible stretches (`(( ))` in Fisher) become `UNK_WORD` (`<unk>`).

The conventions are those of the corpora's own transcription guidelines, as Kaldi's
`swbd1_data_prep`, `fisher_data_prep` and `eval2000_data_prep` handle them; the code is ours.
Each function takes one utterance's text and returns the normalised text ("" when nothing
is left: the caller drops the utterance and counts it).
"""

from __future__ import annotations

import re

NOISE = "[noise]"
LAUGHTER = "[laughter]"
VOCALIZED_NOISE = "[vocalized-noise]"
NOISE_WORDS = (NOISE, LAUGHTER, VOCALIZED_NOISE)
UNK_WORD = "<unk>"

# Spelling variants of the same hesitation / back-channel -> one form (CMUdict's where it has one).
HESITATION_MAP = {
    "uhh": "uh", "umm": "um", "uhm": "um",
    "hmm": "hm", "hmmm": "hm", "mmm": "mm",
    "um-hum": "mhm", "mm-hmm": "mhm", "mm-hm": "mhm", "uh-hum": "mhm",
    "uhhuh": "uh-huh", "huh-uh": "uh-uh",
}
HESITATIONS = frozenset(["uh", "um", "hm", "mm", "mhm", "uh-huh", "uh-uh"])
# Lexicon entries for the words above that CMUdict lacks (phones as docs/interfaces.md).
EXTRA_LEXICON = {
    NOISE: [["NSN"]],
    LAUGHTER: [["NSN"]],
    VOCALIZED_NOISE: [["SPN"]],
    "uh-uh": [["AH", "AH"]],
}

# Fisher / eval2000 non-speech tags -> noise words.
_EVENT_MAP = {
    "laugh": LAUGHTER, "laughter": LAUGHTER, "laughs": LAUGHTER,
    "mn": VOCALIZED_NOISE, "vocalized-noise": VOCALIZED_NOISE, "vocalized_noise": VOCALIZED_NOISE,
    "noise": NOISE, "breath": NOISE, "cough": NOISE, "lipsmack": NOISE, "sigh": NOISE,
    "sneeze": NOISE, "click": NOISE, "distortion": NOISE, "background": NOISE,
    "static": NOISE, "ring": NOISE, "sniff": NOISE, "throat": NOISE, "yawn": NOISE,
}
# Tags that mark no sound worth a word: dropped.
_DROP_EVENTS = frozenset(["silence", "pause", "skip", "[skip]"])


def _canonical(word: str) -> str:
    """Lower-case a finished word and spell hesitations one way."""
    word = word.lower()
    return HESITATION_MAP.get(word, word)


def _event(tag: str) -> str | None:
    """A bracketed non-speech tag (without brackets) -> a noise word, or None to drop it."""
    tag = tag.strip().lower()
    if tag in _DROP_EVENTS:
        return None
    return _EVENT_MAP.get(tag, NOISE)


# ---------------------------------------------------------------- Switchboard (MS-98)

_SWBD_LAUGH_WORD = re.compile(r"^\[laughter-(.+)\](-?)$")
_SWBD_ALT = re.compile(r"^\[([^/]+)/([^/]+)\](-?)$")
_SWBD_PARTIAL_END = re.compile(r"^([^\[\]]+)\[[^\[\]]*\]-?$")  # ab[solute]- -> ab-
_SWBD_PARTIAL_START = re.compile(r"^-?\[[^\[\]]*\]([^\[\]]+)$")  # -[th]at -> -at
_SWBD_PARTIAL_BOTH = re.compile(r"^-?\[[^\[\]]*\]([^\[\]]+)\[[^\[\]]*\]-?$")  # -[a]b[out]- -> -b-
_SWBD_INNER = re.compile(r"^([^\[\]]+)\[[^\[\]]*\]([^\[\]]+)$")  # ammu[n]it- -> ammu-it-


def _swbd_fragment(tok: str) -> str:
    """Partial-word forms of one MS-98 token; other tokens are returned unchanged."""
    m = _SWBD_PARTIAL_BOTH.match(tok)
    if m:
        return f"-{m.group(1)}-"
    m = _SWBD_PARTIAL_END.match(tok)
    if m:
        return f"{m.group(1)}-"
    m = _SWBD_PARTIAL_START.match(tok)
    if m:
        return f"-{m.group(1)}"
    m = _SWBD_INNER.match(tok)
    if m:
        return f"{m.group(1)}-{m.group(2)}"
    return tok


def normalize_swbd_token(tok: str) -> str | None:
    """One MS-98 token -> a word, or None when it is dropped ([silence], asides)."""
    tok = tok.lower()
    if tok in ("[silence]", "<b_aside>", "<e_aside>"):
        return None
    if tok in NOISE_WORDS:
        return tok
    m = _SWBD_LAUGH_WORD.match(tok)
    if m:  # [laughter-yes] -> yes, [laughter-sim]- -> sim-
        tok = m.group(1) + m.group(2)
    m = _SWBD_ALT.match(tok)
    if m:  # [said/meant]: the intended word, unless what was said is a fragment
        said, meant, dash = m.groups()
        if "[" in said or said.endswith("-") or dash:
            tok = _swbd_fragment(said).rstrip("-") + "-"
        else:
            tok = meant
    if tok.startswith("[") and tok.endswith("]") and "/" not in tok:
        return _event(tok[1:-1])
    tok = _swbd_fragment(tok)
    if tok.startswith("{") and tok.endswith("}"):  # coinage: {weirdo} -> weirdo
        tok = tok[1:-1]
    tok = re.sub(r"_\d+", "", tok)  # them_1 -> them, them_1's -> them's
    if not tok.strip("-"):
        return None
    return _canonical(tok)


def normalize_swbd(text: str) -> str:
    """Normalise one Switchboard MS-98 transcript segment (the words after the times)."""
    words = (normalize_swbd_token(t) for t in text.split())
    return " ".join(w for w in words if w)


# ---------------------------------------------------------------- Fisher

_ACRONYM = re.compile(r"^((?:[a-z]\._)+[a-z]\.)(s?)$")  # u._c._l._a. -> u c l a


def _fisher_token(tok: str) -> list[str]:
    m = _ACRONYM.match(tok)
    if m:
        letters = m.group(1).replace("_", "").split(".")[:-1]
        if m.group(2):  # a._b._c.s -> a b c's
            letters[-1] += "'s"
        return letters
    if re.fullmatch(r"[a-z]\.", tok):  # single letter "b." -> b
        return [tok[0]]
    tok = tok.strip("?,!*.\"")
    if not tok or not tok.strip("-'"):
        return []
    return [_canonical(tok)]


def normalize_fisher(text: str) -> str:
    """Normalise one Fisher English (LDC2004T19/LDC2005T19) transcript segment."""
    text = text.lower()
    text = re.sub(r"<[^>]*>", " ", text)  # foreign-language spans <german ...>
    text = re.sub(r"\[\[[^\]]*\]\]", " ", text)  # [[skip]] comments
    text = re.sub(r"\(\(\s*\)\)", f" {UNK_WORD} ", text)  # (( )) unintelligible
    text = text.replace("((", " ").replace("))", " ")  # ((maybe)) -> maybe
    out: list[str] = []
    for tok in text.split():
        if tok == UNK_WORD:
            out.append(tok)
        elif tok.startswith("[") and tok.endswith("]"):
            w = _event(tok[1:-1])
            if w:
                out.append(w)
        else:
            out.extend(_fisher_token(tok))
    return " ".join(out)


# ---------------------------------------------------------------- Hub5'00 (eval2000) stm

IGNORE_SEGMENT = "ignore_time_segment_in_scoring"


def normalize_eval2000(text: str) -> str:
    """Normalise the words of one Hub5'00 stm segment into the training word forms.

    Returns "" for `IGNORE_TIME_SEGMENT_IN_SCORING` segments. Scoring itself uses the stm and
    GLM as shipped; this text is for the data dir (quick WER, LM checks).
    """
    text = text.lower()
    if IGNORE_SEGMENT in text:
        return ""
    text = re.sub(r"<[be]_aside>", " ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    # {a / an} alternations: keep the first alternative
    text = re.sub(r"\{\s*([^/{}]*?)\s*/[^{}]*\}", r" \1 ", text)
    out: list[str] = []
    for tok in text.split():
        if tok.startswith("(") and tok.endswith(")"):  # optionally deletable: (uh-huh)
            tok = tok.strip("()")
        tok = tok.strip("()")
        if not tok:
            continue
        if tok.startswith("%"):  # %hesitation, %uh, %um
            tok = tok[1:]
            if tok == "hesitation":
                continue
        if tok.startswith("{") and tok.endswith("}") or tok.startswith("[") and tok.endswith("]"):
            w = _event(tok[1:-1])
            if w:
                out.append(w)
            continue
        tok = tok.strip("?,!*\"")
        if tok and tok.strip("-'"):
            out.append(_canonical(tok))
    return " ".join(out)
