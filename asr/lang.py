"""Kaldi lang directory from a Kaldi dict directory (what utils/prepare_lang.sh makes).

Input dict dir: `lexicon.txt` (`word PH1 PH2 ...`), `silence_phones.txt`,
`optional_silence.txt`, `nonsilence_phones.txt`, `extra_questions.txt` (may be empty).

Output lang dir:
  phones.txt        `<eps>` 0, silence phones, non-silence phones, then `#0` .. `#K`
  words.txt         `<eps>` 0, the lexicon's words (sorted), `#0`, `<s>`, `</s>`
  topo              3-state left-to-right HMMs; silence phones 5 states (Kaldi's shape)
  L.fst             lexicon with optional silence between words (prob `sil_prob`)
  L_disambig.fst    the same with lexicon disambiguation symbols and a `#0:#0` loop
  oov.txt, oov.int  the OOV word (`<unk>`)
  phones/{silence,nonsilence,optional_silence,disambig,context_indep}.{txt,int}
  phones/{sets,roots,extra_questions}.{txt,int}   (for the tree builder)

Phones are **position independent** (no `_B/_I/_E/_S` word-position variants).
"""

from __future__ import annotations

import argparse
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import kaldifst

from asr.utils import atomic_path, atomic_write_text, setup_logging

log = logging.getLogger(__name__)


@dataclass
class Lang:
    """Symbol tables and phone sets of a lang dir (ids as in phones.txt / words.txt)."""

    phones: dict[str, int]
    words: dict[str, int]
    silence: list[str]
    nonsilence: list[str]
    optional_silence: str
    oov: str = "<unk>"
    lexicon: list[tuple[str, list[str]]] = field(default_factory=list)

    @property
    def disambig_ids(self) -> list[int]:
        return [i for p, i in self.phones.items() if p.startswith("#")]

    @property
    def silence_ids(self) -> list[int]:
        return [self.phones[p] for p in self.silence]

    @property
    def nonsilence_ids(self) -> list[int]:
        return [self.phones[p] for p in self.nonsilence]

    @property
    def real_phone_ids(self) -> list[int]:
        return sorted(self.silence_ids + self.nonsilence_ids)

    def id2phone(self) -> dict[int, str]:
        return {i: p for p, i in self.phones.items()}

    def id2word(self) -> dict[int, str]:
        return {i: w for w, i in self.words.items()}


def _read_list(path: Path, required: bool = True) -> list[str]:
    if not path.is_file():
        if required:
            raise FileNotFoundError(f"{path}: missing from the dict dir")
        return []
    return [tok for line in path.read_text().splitlines() for tok in line.split()]


def read_symbol_table(path: str | Path) -> dict[str, int]:
    """Read a Kaldi `symbol id` table (phones.txt, words.txt)."""
    table: dict[str, int] = {}
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{lineno}: expected 'symbol id', got {line!r}")
        table[parts[0]] = int(parts[1])
    return table


def read_lexicon(path: str | Path) -> list[tuple[str, list[str]]]:
    """`word PH1 PH2 ...` lines -> [(word, [phones])]; a word without phones is an error."""
    lex = []
    for lineno, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise ValueError(f"{path}:{lineno}: word '{parts[0]}' has no pronunciation")
        lex.append((parts[0], parts[1:]))
    return lex


def add_lex_disambig(lexicon: list[tuple[str, list[str]]]) -> tuple[list[tuple[str, list[str]]], int]:
    """Append `#1`, `#2`, ... to pronunciations that are homophones or prefixes of others.

    Returns the new lexicon and the largest disambiguation index used (0 if none).
    """
    counts: dict[tuple[str, ...], int] = {}
    prefixes: set[tuple[str, ...]] = set()
    for _, pron in lexicon:
        t = tuple(pron)
        counts[t] = counts.get(t, 0) + 1
        for k in range(1, len(t)):
            prefixes.add(t[:k])
    next_idx: dict[tuple[str, ...], int] = {}
    out, max_idx = [], 0
    for word, pron in lexicon:
        t = tuple(pron)
        if counts[t] > 1 or t in prefixes:
            k = next_idx.get(t, 0) + 1
            next_idx[t] = k
            max_idx = max(max_idx, k)
            out.append((word, list(pron) + [f"#{k}"]))
        else:
            out.append((word, list(pron)))
    return out, max_idx


def make_topo(nonsil_ids: list[int], sil_ids: list[int]) -> str:
    """Kaldi HmmTopology text: 3 emitting states for non-silence, 5 (ergodic middle) for silence."""
    lines = ["<Topology>", "<TopologyEntry>", "<ForPhones>", " ".join(map(str, nonsil_ids)), "</ForPhones>"]
    for s in range(3):
        lines.append(f"<State> {s} <PdfClass> {s} <Transition> {s} 0.75 <Transition> {s + 1} 0.25 </State>")
    lines += ["<State> 3 </State>", "</TopologyEntry>"]
    if sil_ids:
        lines += ["<TopologyEntry>", "<ForPhones>", " ".join(map(str, sil_ids)), "</ForPhones>"]
        lines.append("<State> 0 <PdfClass> 0 <Transition> 0 0.25 <Transition> 1 0.25 "
                     "<Transition> 2 0.25 <Transition> 3 0.25 </State>")
        for s in (1, 2, 3):
            arcs = " ".join(f"<Transition> {d} 0.25" for d in (1, 2, 3, 4))
            lines.append(f"<State> {s} <PdfClass> {s} {arcs} </State>")
        lines.append("<State> 4 <PdfClass> 4 <Transition> 4 0.75 <Transition> 5 0.25 </State>")
        lines += ["<State> 5 </State>", "</TopologyEntry>"]
    lines.append("</Topology>")
    return "\n".join(lines) + "\n"


def make_lexicon_fst(
    lexicon: list[tuple[str, list[str]]],
    phones: dict[str, int],
    words: dict[str, int],
    sil_phone: str,
    sil_prob: float = 0.5,
    sil_disambig: str | None = None,
) -> kaldifst.StdVectorFst:
    """L: phones -> words, optional silence between words and at both ends.

    States: 0 start, 1 loop (word boundary), 2 before an optional silence (its SIL arc leads to 1). The word label sits on
    the first phone's arc. `sil_disambig` (e.g. `#3`) follows the optional silence in L_disambig.
    Output is arc-sorted on output labels.
    """
    assert 0.0 < sil_prob < 1.0
    sil_cost, no_sil_cost = -math.log(sil_prob), -math.log(1.0 - sil_prob)
    fst = kaldifst.StdVectorFst()
    start, loop, sil = fst.add_state(), fst.add_state(), fst.add_state()
    fst.start = start
    sil_id = phones[sil_phone]
    fst.add_arc(start, kaldifst.StdArc(0, 0, no_sil_cost, loop))
    fst.add_arc(start, kaldifst.StdArc(0, 0, sil_cost, sil))
    if sil_disambig is None:
        fst.add_arc(sil, kaldifst.StdArc(sil_id, 0, 0.0, loop))
    else:
        mid = fst.add_state()
        fst.add_arc(sil, kaldifst.StdArc(sil_id, 0, 0.0, mid))
        fst.add_arc(mid, kaldifst.StdArc(phones[sil_disambig], 0, 0.0, loop))
    for word, pron in lexicon:
        src = loop
        olabel = words[word]
        for ph in pron[:-1]:
            nxt = fst.add_state()
            fst.add_arc(src, kaldifst.StdArc(phones[ph], olabel, 0.0, nxt))
            src, olabel = nxt, 0
        last = phones[pron[-1]]
        fst.add_arc(src, kaldifst.StdArc(last, olabel, no_sil_cost, loop))
        fst.add_arc(src, kaldifst.StdArc(last, olabel, sil_cost, sil))
    fst.set_final(loop, 0.0)
    kaldifst.arcsort(fst, sort_type="olabel")
    return fst


def _write_fst(fst: kaldifst.StdVectorFst, path: Path) -> None:
    with atomic_path(path) as tmp:
        fst.write(str(tmp))


def prepare_lang(dict_dir: str | Path, lang_dir: str | Path, oov: str = "<unk>", sil_prob: float = 0.5) -> Lang:
    """Write a Kaldi lang dir from `dict_dir` (see the module docstring); returns its `Lang`."""
    dict_dir, lang_dir = Path(dict_dir), Path(lang_dir)
    silence = _read_list(dict_dir / "silence_phones.txt")
    nonsilence = _read_list(dict_dir / "nonsilence_phones.txt")
    opt_sil = _read_list(dict_dir / "optional_silence.txt")
    if len(opt_sil) != 1 or opt_sil[0] not in silence:
        raise ValueError(f"{dict_dir}/optional_silence.txt: need exactly one phone from silence_phones.txt")
    if set(silence) & set(nonsilence):
        raise ValueError(f"{dict_dir}: phones in both silence and nonsilence lists: "
                         f"{sorted(set(silence) & set(nonsilence))}")
    lexicon = read_lexicon(dict_dir / "lexicon.txt")
    known = set(silence) | set(nonsilence)
    for word, pron in lexicon:
        bad = [p for p in pron if p not in known]
        if bad:
            raise ValueError(f"{dict_dir}/lexicon.txt: word '{word}' uses unknown phones {bad}")
    if oov not in {w for w, _ in lexicon}:
        raise ValueError(f"{dict_dir}/lexicon.txt: the OOV word '{oov}' is not in the lexicon")
    extra_q = [line.split() for line in (dict_dir / "extra_questions.txt").read_text().splitlines()
               if line.split()] if (dict_dir / "extra_questions.txt").is_file() else []

    lex_disambig, max_disambig = add_lex_disambig(lexicon)
    sil_disambig = f"#{max_disambig + 1}"
    num_disambig = max_disambig + 1  # #0 .. #(max+1)
    phone_list = ["<eps>"] + silence + nonsilence + [f"#{k}" for k in range(num_disambig + 1)]
    phones = {p: i for i, p in enumerate(phone_list)}
    word_list = ["<eps>"] + sorted({w for w, _ in lexicon}) + ["#0", "<s>", "</s>"]
    words = {w: i for i, w in enumerate(word_list)}
    lang = Lang(phones, words, silence, nonsilence, opt_sil[0], oov, lexicon)

    (lang_dir / "phones").mkdir(parents=True, exist_ok=True)
    atomic_write_text(lang_dir / "phones.txt", "".join(f"{p} {i}\n" for p, i in phones.items()))
    atomic_write_text(lang_dir / "words.txt", "".join(f"{w} {i}\n" for w, i in words.items()))
    atomic_write_text(lang_dir / "oov.txt", f"{oov}\n")
    atomic_write_text(lang_dir / "oov.int", f"{words[oov]}\n")

    def write_set(name: str, groups: list[list[str]]) -> None:
        atomic_write_text(lang_dir / "phones" / f"{name}.txt", "".join(" ".join(g) + "\n" for g in groups))
        atomic_write_text(lang_dir / "phones" / f"{name}.int",
                          "".join(" ".join(str(phones[p]) for p in g) + "\n" for g in groups))

    disambig = [p for p in phone_list if p.startswith("#")]
    write_set("silence", [[p] for p in silence])
    write_set("nonsilence", [[p] for p in nonsilence])
    write_set("optional_silence", [[opt_sil[0]]])
    write_set("disambig", [[p] for p in disambig])
    write_set("context_indep", [[p] for p in silence])
    write_set("sets", [[p] for p in silence + nonsilence])
    write_set("extra_questions", extra_q)
    atomic_write_text(lang_dir / "phones" / "roots.txt",
                      "".join(f"shared split {p}\n" for p in silence + nonsilence))
    atomic_write_text(lang_dir / "phones" / "roots.int",
                      "".join(f"shared split {phones[p]}\n" for p in silence + nonsilence))
    atomic_write_text(lang_dir / "topo", make_topo([phones[p] for p in nonsilence], [phones[p] for p in silence]))

    L = make_lexicon_fst(lexicon, phones, words, opt_sil[0], sil_prob)
    _write_fst(L, lang_dir / "L.fst")
    L_dis = make_lexicon_fst(lex_disambig, phones, words, opt_sil[0], sil_prob, sil_disambig=sil_disambig)
    # `#0` from G must pass through L: a #0:#0 self-loop where words are emitted / at final states.
    kaldifst.add_self_loops(L_dis, [phones["#0"]], [words["#0"]])
    kaldifst.arcsort(L_dis, sort_type="olabel")
    _write_fst(L_dis, lang_dir / "L_disambig.fst")
    log.info("lang %s: %d phones (%d silence), %d words, %d disambiguation symbols, L %d states",
             lang_dir, len(silence) + len(nonsilence), len(silence), len(lexicon), len(disambig), L.num_states)
    return lang


def load_lang(lang_dir: str | Path) -> Lang:
    """Read a lang dir written by `prepare_lang` (symbol tables and phone sets)."""
    lang_dir = Path(lang_dir)
    for name in ("phones.txt", "words.txt", "phones/silence.txt", "phones/nonsilence.txt", "topo", "L.fst"):
        if not (lang_dir / name).exists():
            raise FileNotFoundError(f"{lang_dir / name}: missing (run asr.lang first)")
    phones = read_symbol_table(lang_dir / "phones.txt")
    words = read_symbol_table(lang_dir / "words.txt")
    silence = _read_list(lang_dir / "phones/silence.txt")
    nonsilence = _read_list(lang_dir / "phones/nonsilence.txt")
    opt = _read_list(lang_dir / "phones/optional_silence.txt")[0]
    oov = (lang_dir / "oov.txt").read_text().split()[0] if (lang_dir / "oov.txt").is_file() else "<unk>"
    return Lang(phones, words, silence, nonsilence, opt, oov)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dict_dir", help="Kaldi dict dir (lexicon.txt, silence_phones.txt, ...)")
    p.add_argument("lang_dir", help="output lang dir")
    p.add_argument("--oov", default="<unk>", help="OOV word (must be in the lexicon)")
    p.add_argument("--sil-prob", type=float, default=0.5, help="optional-silence probability between words")
    args = p.parse_args(argv)
    setup_logging(log_file=Path(args.lang_dir) / "log" / "prepare_lang.log")
    prepare_lang(args.dict_dir, args.lang_dir, oov=args.oov, sil_prob=args.sil_prob)


if __name__ == "__main__":
    main()
