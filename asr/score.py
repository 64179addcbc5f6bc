"""WER scoring with sclite's conventions, Hub5'00-style filtering, sclite/icefall report files.

    python -m asr.score --ref data/test/text --hyp DIR/hyp.txt --dir DIR/scoring
    python -m asr.score --ref data/eval2000/stm --glm data/eval2000/glm \
        --segments data/eval2000/segments --subsets sw_ en_ \
        --hyp DIR/hyp_lmwt*_wip*.txt --dir DIR/scoring

Conventions (sclite's):
- Alignment costs: insertion 3, deletion 3, substitution 4 (sclite's DP weights), done by
  kaldialign (`sclite_mode=True`) for plain references and by a small DP over a word network
  when the reference has alternatives or optionally deletable words.
- Reference tokens in parentheses `(uh)`, `(%hesitation)`, `(th-)` are optionally deletable:
  omitted by the hypothesis they cost nothing and are not counted in `# Wrd`; recognised they
  count as correct; replaced by another word they are a substitution.
- Alternatives `{ a / b c / @ }` (in the STM or produced by the GLM) match any one branch;
  `@` is the empty branch.
- A fragment `th-` (or `-ing`) matches a hypothesis word that starts (ends) with it (sclite -F).
- Hub5 filtering: GLM word mapping on reference and hypothesis; tokens `[...]` (noise,
  laughter), `<...>` (`<unk>`, asides) and `!sil` are dropped from both; `%hesitation` is
  dropped from the hypothesis (csrfilt -dh) and optionally deletable in the reference.
  A GLM rule with alternatives is applied to the reference only; a hypothesis keeps its words
  (they are one of the branches) — rules with a single output apply to both.
- Missing utterance: an utterance of the reference with no hypothesis line is scored as all
  deletions (what sclite does for a reference segment with no hypothesis words in stm/ctm mode)
  and logged as a WARNING naming it; `--require-all` turns that into an error. A hypothesis
  utterance that is not in the reference is an error.

Several `--hyp` files are several settings (e.g. `hyp_lmwt10_wip0.5.txt`): each is scored into
`DIR/<setting>/` and the best (lowest WER over all utterances) is reported in `DIR/wer.json`,
`DIR/best_wer` and the icefall-style `DIR/wer-summary`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import kaldialign

from asr.utils import atomic_write_text, read_kaldi_map, setup_logging

logger = logging.getLogger("asr.score")

INS_COST, DEL_COST, SUB_COST = 3, 3, 4  # sclite's DP weights
HESITATION = "%hesitation"
EPS = "*"  # gap marker in alignments


# ---------------------------------------------------------------------------------------------
# Reference networks: a sequence of slots; a slot is a tuple of alternative word sequences.


Slot = tuple[tuple[str, ...], ...]


def _plain(word: str) -> Slot:
    return ((word,),)


def _optional(word: str) -> Slot:
    return ((word,), ())


def tokenize(text: str) -> list[str]:
    """Split text into tokens, keeping `{`, `/`, `}` as separate tokens."""
    return re.sub(r"([{}/])", r" \1 ", text.lower()).split()


def parse_alternatives(tokens: list[str], i: int, where: str) -> tuple[Slot, int]:
    """Parse `{ a b / c / @ }` starting at tokens[i] == '{'; return the slot and next index."""
    alts: list[tuple[str, ...]] = []
    cur: list[str] = []
    i += 1
    while i < len(tokens) and tokens[i] != "}":
        tok = tokens[i]
        if tok == "/":
            alts.append(tuple(cur))
            cur = []
        elif tok != "@":
            cur.append(tok)
        i += 1
    if i >= len(tokens):
        raise ValueError(f"{where}: unclosed '{{' in alternatives")
    alts.append(tuple(cur))
    return tuple(dict.fromkeys(alts)), i + 1


def is_dropped(word: str) -> bool:
    """Noise/non-lexical tokens scored by nobody: `[noise]`, `<unk>`, `!sil`, empty."""
    return not word or word.startswith("[") or word.startswith("<") or word == "!sil"


@dataclass
class GlmRule:
    """One GLM rule `lhs => rhs / [ left ] __ [ right ]`; rhs as alternative word sequences."""

    lhs: tuple[str, ...]
    rhs: tuple[tuple[str, ...], ...]
    left: tuple[str, ...] = ()
    right: tuple[str, ...] = ()


_CONTEXT_RE = re.compile(r"^(?P<rhs>.*?)\s*/\s*\[(?P<left>[^\]]*)\]\s*__\s*\[(?P<right>[^\]]*)\]\s*$")


def parse_glm(text: str, where: str = "glm") -> list[GlmRule]:
    """Parse a NIST GLM (`* key = 'value'` header lines, `;;` comments, one rule a line).

    Rule: `LHS words => RHS / [ left context ] __ [ right context ]`; the context part may be
    absent; RHS is words and `{ a / b c / @ }` groups (expanded into whole alternatives).
    """
    rules: list[GlmRule] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split(";;", 1)[0].strip()
        if not line or line.startswith("*"):
            continue
        if "=>" not in line:
            raise ValueError(f"{where}:{lineno}: GLM rule without '=>': {raw!r}")
        lhs_text, rest = line.split("=>", 1)
        left = right = ""
        m = _CONTEXT_RE.match(rest.strip())
        if m:
            rest, left, right = m.group("rhs"), m.group("left"), m.group("right")
        lhs = tuple(tokenize(lhs_text))
        if not lhs:
            raise ValueError(f"{where}:{lineno}: GLM rule with an empty left-hand side: {raw!r}")
        tokens = tokenize(rest)
        alts: list[tuple[str, ...]] = [()]
        i = 0
        while i < len(tokens):
            if tokens[i] == "{":
                slot, i = parse_alternatives(tokens, i, f"{where}:{lineno}")
                alts = [a + b for a in alts for b in slot]
            elif tokens[i] in ("/", "}"):
                raise ValueError(f"{where}:{lineno}: stray '{tokens[i]}' in GLM rule: {raw!r}")
            else:
                if tokens[i] != "@":
                    alts = [a + (tokens[i],) for a in alts]
                i += 1
        rules.append(GlmRule(lhs, tuple(dict.fromkeys(alts)), tuple(tokenize(left)), tuple(tokenize(right))))
    return rules


def read_glm(path: str | Path) -> list[GlmRule]:
    """Read and parse a GLM file (latin-1 safe)."""
    return parse_glm(Path(path).read_text(encoding="utf-8", errors="replace"), str(path))


def _rule_at(rules_by_first: dict[str, list[GlmRule]], words: list[str], i: int) -> GlmRule | None:
    for rule in rules_by_first.get(words[i], ()):
        n = len(rule.lhs)
        if tuple(words[i : i + n]) != rule.lhs:
            continue
        if rule.left and tuple(words[max(0, i - len(rule.left)) : i]) != rule.left:
            continue
        if rule.right and tuple(words[i + n : i + n + len(rule.right)]) != rule.right:
            continue
        return rule
    return None


def _index_rules(rules: list[GlmRule]) -> dict[str, list[GlmRule]]:
    by_first: dict[str, list[GlmRule]] = {}
    for rule in sorted(rules, key=lambda r: -len(r.lhs)):  # longest match first
        by_first.setdefault(rule.lhs[0], []).append(rule)
    return by_first


def parse_reference(text: str, rules: list[GlmRule] | None = None, where: str = "ref") -> list[Slot]:
    """Reference text -> slots: GLM applied, noise dropped, `(w)` and `%hesitation` optional."""
    by_first = _index_rules(rules or [])
    tokens = tokenize(text)
    # First pass: words (with an `optional` flag) and explicit alternative groups.
    items: list[tuple[str, object]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "{":
            slot, i = parse_alternatives(tokens, i, where)
            items.append(("alt", slot))
            continue
        if tok in ("/", "}"):
            raise ValueError(f"{where}: stray '{tok}' in reference {text!r}")
        optional = tok.startswith("(") and tok.endswith(")") and len(tok) > 2
        word = tok[1:-1] if optional else tok
        items.append(("opt" if optional else "word", word))
        i += 1
    slots: list[Slot] = []
    j = 0
    while j < len(items):
        kind, val = items[j]
        if kind == "alt":
            slots.append(val)  # type: ignore[arg-type]
            j += 1
            continue
        # Try a GLM rule on the run of plain words starting here.
        run = []
        k = j
        while k < len(items) and items[k][0] == "word":
            run.append(items[k][1])
            k += 1
        rule = _rule_at(by_first, run, 0) if run else None
        if rule is not None:
            alts = tuple(tuple(w for w in a if not is_dropped(w)) for a in rule.rhs)
            if len(alts) == 1:
                slots.extend(_optional(w) if w == HESITATION else _plain(w) for w in alts[0])
            else:
                slots.append(alts)
            j += len(rule.lhs)
            continue
        word = str(val)
        if kind == "opt":
            mapped = _rule_at(by_first, [word], 0)
            for w in mapped.rhs[0] if mapped is not None else (word,):
                if not is_dropped(w):
                    slots.append(_optional(w))
        elif not is_dropped(word):
            slots.append(_optional(word) if word == HESITATION else _plain(word))
        j += 1
    return slots


def normalize_hypothesis(words: list[str], rules: list[GlmRule] | None = None) -> list[str]:
    """Hypothesis words -> scored words: single-output GLM rules applied, noise and hesitations dropped."""
    by_first = _index_rules([r for r in (rules or []) if len(r.rhs) == 1])
    words = [w.lower() for w in words]
    out: list[str] = []
    i = 0
    while i < len(words):
        rule = _rule_at(by_first, words, i)
        if rule is not None:
            out.extend(rule.rhs[0])
            i += len(rule.lhs)
        else:
            out.append(words[i])
            i += 1
    return [w for w in out if not is_dropped(w) and w != HESITATION]


# ---------------------------------------------------------------------------------------------
# Alignment


def words_match(ref: str, hyp: str) -> bool:
    """Exact match, or a fragment `th-`/`-ing` matching the start/end of `hyp` (sclite -F)."""
    if ref == hyp:
        return True
    if len(ref) > 1 and ref.endswith("-"):
        return hyp.startswith(ref[:-1])
    if len(ref) > 1 and ref.startswith("-"):
        return hyp.endswith(ref[1:])
    return False


def _align_network(slots: list[Slot], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """Min-cost alignment of `hyp` against the word network of `slots` (sclite costs)."""
    # Build a DAG: node ids increase along every arc. arcs[u] = [(v, word or None)].
    arcs: list[list[tuple[int, str | None]]] = [[]]
    node = 0
    for slot in slots:
        end_arcs: list[int] = []
        for alt in slot:
            u = node
            if not alt:
                end_arcs.append(u)
                continue
            for w in alt[:-1]:
                arcs.append([])
                arcs[u].append((len(arcs) - 1, w))
                u = len(arcs) - 1
            end_arcs.append(u)
            arcs[u].append((-1, alt[-1]))  # patched to the slot's end node below
        arcs.append([])
        end = len(arcs) - 1
        for u in range(node, end):
            arcs[u] = [(end if v == -1 else v, w) for v, w in arcs[u]]
        for alt, u in zip(slot, end_arcs):
            if not alt:
                arcs[u].append((end, None))
        node = end
    n_nodes, m = len(arcs), len(hyp)
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n_nodes)]
    back: list[list[tuple[int, int, str | None] | None]] = [[None] * (m + 1) for _ in range(n_nodes)]
    cost[0][0] = 0
    for u in range(n_nodes):
        row = cost[u]
        for j in range(1, m + 1):  # insertions stay in the node
            if row[j - 1] + INS_COST < row[j]:
                row[j] = row[j - 1] + INS_COST
                back[u][j] = (u, j - 1, "I")
        for v, w in arcs[u]:
            for j in range(m + 1):
                c = row[j]
                if c == inf:
                    continue
                if w is None:
                    if c < cost[v][j]:
                        cost[v][j], back[v][j] = c, (u, j, None)
                    continue
                if c + DEL_COST < cost[v][j]:
                    cost[v][j], back[v][j] = c + DEL_COST, (u, j, "D" + w)
                if j < m:
                    cc = c + (0 if words_match(w, hyp[j]) else SUB_COST)
                    if cc < cost[v][j + 1]:
                        cost[v][j + 1], back[v][j + 1] = cc, (u, j, "M" + w)
    out: list[tuple[str | None, str | None]] = []
    u, j = n_nodes - 1, m
    while (u, j) != (0, 0):
        pu, pj, op = back[u][j]  # type: ignore[misc]
        if op == "I":
            out.append((None, hyp[pj]))
        elif op is not None and op[0] == "D":
            out.append((op[1:], None))
        elif op is not None:
            out.append((op[1:], hyp[pj]))
        u, j = pu, pj
    out.reverse()
    return out


def align(slots: list[Slot], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """Align hypothesis words to a reference; pairs (ref or None, hyp or None).

    Plain references go through kaldialign (sclite weights); networks through `_align_network`.
    """
    plain = all(len(s) == 1 and len(s[0]) == 1 for s in slots)
    if plain and not any(w.startswith("-") or w.endswith("-") for s in slots for w in s[0]):
        ref = [s[0][0] for s in slots]
        pairs = kaldialign.align(ref, hyp, EPS, sclite_mode=True)
        return [(None if r == EPS else r, None if h == EPS else h) for r, h in pairs]
    return _align_network(slots, hyp)


@dataclass
class Counts:
    """Error counts (sclite's Corr/Sub/Del/Ins over `ref` words, `snt` sentences)."""

    snt: int = 0
    ref: int = 0
    corr: int = 0
    sub: int = 0
    dele: int = 0
    ins: int = 0
    snt_err: int = 0

    @property
    def err(self) -> int:
        return self.sub + self.dele + self.ins

    def add(self, other: "Counts") -> "Counts":
        for k in ("snt", "ref", "corr", "sub", "dele", "ins", "snt_err"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        return self

    def pct(self, n: int) -> float:
        return 100.0 * n / self.ref if self.ref else (0.0 if n == 0 else math.inf)

    @property
    def wer(self) -> float:
        """WER in percent; 0 for an empty reference with no insertions, inf with insertions."""
        return self.pct(self.err)

    def to_dict(self) -> dict:
        return {
            "wer": round(self.wer, 4) if math.isfinite(self.wer) else None,
            "ref_words": self.ref, "sentences": self.snt, "corr": self.corr, "sub": self.sub,
            "del": self.dele, "ins": self.ins, "err": self.err, "sent_err": self.snt_err,
            "sent_err_pct": round(100.0 * self.snt_err / self.snt, 4) if self.snt else 0.0,
        }


def count_alignment(pairs: list[tuple[str | None, str | None]]) -> Counts:
    """Counts of one aligned utterance."""
    c = Counts(snt=1)
    for r, h in pairs:
        if r is None:
            c.ins += 1
        elif h is None:
            c.dele += 1
            c.ref += 1
        elif words_match(r, h):
            c.corr += 1
            c.ref += 1
        else:
            c.sub += 1
            c.ref += 1
    c.snt_err = int(c.err > 0)
    return c


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass
class RefUtt:
    """One scored reference unit (an utterance, or an STM segment)."""

    key: str
    speaker: str
    text: str
    file: str = ""
    channel: str = ""
    begin: float = 0.0
    end: float = 0.0


def read_stm(path: str | Path) -> list[RefUtt]:
    """STM lines `file channel speaker begin end [<labels>] words...`; `;;` comments."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";;"):
            continue
        parts = line.split(maxsplit=5)
        if len(parts) < 5:
            raise ValueError(f"{path}:{lineno}: STM line needs 'file channel speaker begin end': {line!r}")
        f, ch, spk, b, e = parts[:5]
        text = parts[5] if len(parts) > 5 else ""
        if text.startswith("<"):
            text = text.split(">", 1)[1] if ">" in text else ""
        if spk.lower().startswith("inter_segment_gap") or "ignore_time_segment_in_scoring" in text.lower():
            continue
        out.append(RefUtt(f"{f}_{ch}_{float(b):09.2f}", spk, text, f, ch, float(b), float(e)))
    return out


def stm_hypotheses(refs: list[RefUtt], hyp: dict[str, str], segments: dict[str, str],
                   reco2fc: dict[str, str] | None, where: str) -> dict[str, str]:
    """Assign each hypothesis utterance to the STM segment (same file/channel) holding its midpoint.

    `segments`: Kaldi `utt reco begin end`; `reco2fc`: `reco file channel` (default: reco
    `file-channel`). Returns STM key -> hypothesis text. An utterance outside every segment is an error.
    """
    by_fc: dict[tuple[str, str], list[RefUtt]] = {}
    for r in refs:
        by_fc.setdefault((r.file, r.channel), []).append(r)
    found: dict[str, list[tuple[float, str]]] = {}
    for utt, text in hyp.items():
        if utt not in segments:
            raise ValueError(f"{where}: utterance '{utt}' has no line in the segments file")
        reco, b, e = segments[utt].split()
        if reco2fc is not None:
            if reco not in reco2fc:
                raise ValueError(f"{where}: recording '{reco}' missing from reco2file_and_channel")
            f, ch = reco2fc[reco].split()
        else:
            f, _, ch = reco.rpartition("-")
        mid = 0.5 * (float(b) + float(e))
        cands = [r for r in by_fc.get((f, ch), []) if r.begin <= mid <= r.end]
        if not cands:
            raise ValueError(f"{where}: utterance '{utt}' ({f} {ch} {mid:.2f}s) lies in no STM segment")
        found.setdefault(cands[0].key, []).append((float(b), text))
    return {k: " ".join(t for _, t in sorted(v)) for k, v in found.items()}


def read_hyp(path: str | Path) -> dict[str, str]:
    """Kaldi text `utt words...` (an utterance with no words may have an empty line)."""
    return read_kaldi_map(path, allow_empty_value=True)


# ---------------------------------------------------------------------------------------------
# Scoring one setting


@dataclass
class UttResult:
    key: str
    speaker: str
    pairs: list[tuple[str | None, str | None]]
    counts: Counts


@dataclass
class SettingResult:
    name: str
    utts: list[UttResult] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def total(self, prefix: str = "") -> Counts:
        c = Counts()
        for u in self.utts:
            if u.key.startswith(prefix):
                c.add(u.counts)
        return c


def score_setting(name: str, refs: list[RefUtt], hyp: dict[str, str], rules: list[GlmRule] | None,
                  require_all: bool = False, where: str = "hyp") -> SettingResult:
    """Align every reference unit with its hypothesis (missing -> empty hypothesis)."""
    ref_keys = {r.key for r in refs}
    extra = sorted(set(hyp) - ref_keys)
    if extra:
        raise ValueError(f"{where}: {len(extra)} hypothesis utterance(s) not in the reference, e.g. '{extra[0]}'")
    res = SettingResult(name)
    for r in refs:
        slots = parse_reference(r.text, rules, where=f"reference of '{r.key}'")
        if r.key not in hyp and any(() not in slot for slot in slots):
            # (a segment of optional words only, e.g. `(%hesitation)`, needs no hypothesis)
            res.missing.append(r.key)
        hwords = normalize_hypothesis(hyp.get(r.key, "").split(), rules)
        pairs = align(slots, hwords)
        res.utts.append(UttResult(r.key, r.speaker, pairs, count_alignment(pairs)))
    if res.missing:
        msg = (f"{where}: {len(res.missing)} reference utterance(s) have no hypothesis, e.g. "
               f"{', '.join(repr(k) for k in res.missing[:5])}")
        if require_all:
            raise ValueError(msg)
        logger.warning("%s -- scored as all deletions", msg)
    return res


# ---------------------------------------------------------------------------------------------
# Report files


def _sys_table(title: str, res: SettingResult, percent: bool) -> str:
    """sclite `.sys` (percent) or `.raw` (counts) per-speaker summary."""
    by_spk: dict[str, Counts] = {}
    for u in res.utts:
        by_spk.setdefault(u.speaker, Counts()).add(u.counts)
    total = res.total()
    spk_w = max([7] + [len(s) for s in by_spk])

    def row(label: str, c: Counts) -> str:
        if percent:
            vals = [c.pct(c.corr), c.pct(c.sub), c.pct(c.dele), c.pct(c.ins), c.pct(c.err),
                    100.0 * c.snt_err / c.snt if c.snt else 0.0]
            body = " ".join(f"{v:6.1f}" for v in vals)
        else:
            body = " ".join(f"{v:6d}" for v in (c.corr, c.sub, c.dele, c.ins, c.err, c.snt_err))
        return f"| {label:<{spk_w}} | {c.snt:5d} {c.ref:7d} | {body} |"

    head = f"| {'SPKR':<{spk_w}} | # Snt   # Wrd | {'Corr':>6} {'Sub':>6} {'Del':>6} {'Ins':>6} {'Err':>6} {'S.Err':>6} |"
    width = len(head)
    sep = "|" + "-" * (spk_w + 2) + "+" + "-" * 15 + "+" + "-" * (width - spk_w - 21) + "|"
    dbl = "|" + "=" * (width - 2) + "|"
    lines = [("SYSTEM SUMMARY PERCENTAGES by SPEAKER" if percent else "SYSTEM SUMMARY COUNTS by SPEAKER").center(width), "",
             "," + "-" * (width - 2) + ".", "|" + title.center(width - 2) + "|", "|" + "-" * (width - 2) + "|",
             head, sep]
    for spk in sorted(by_spk):
        lines += [row(spk, by_spk[spk]), sep]
    lines[-1] = dbl
    lines += [row("Sum/Avg", total), dbl]
    # Mean / S.D. / Median over speakers, as sclite prints them.
    stats_cols = []
    for c in by_spk.values():
        if percent:
            stats_cols.append([c.snt, c.ref, c.pct(c.corr), c.pct(c.sub), c.pct(c.dele), c.pct(c.ins),
                               c.pct(c.err), 100.0 * c.snt_err / c.snt if c.snt else 0.0])
        else:
            stats_cols.append([c.snt, c.ref, c.corr, c.sub, c.dele, c.ins, c.err, c.snt_err])
    cols = list(zip(*stats_cols)) if stats_cols else [[0.0]] * 8
    for label, fn in (("Mean", statistics.fmean),
                      ("S.D.", lambda v: statistics.stdev(v) if len(v) > 1 else 0.0),
                      ("Median", statistics.median)):
        vals = [fn([x for x in col if math.isfinite(x)] or [0.0]) for col in cols]
        lines.append(f"| {label:<{spk_w}} | {vals[0]:5.1f} {vals[1]:7.1f} | " + " ".join(f"{v:6.1f}" for v in vals[2:]) + " |")
    lines.append("`" + "-" * (width - 2) + "'")
    return "\n".join("     " + ln if ln and not ln.startswith("SYSTEM") else ln for ln in lines) + "\n"


def _pra(res: SettingResult) -> str:
    """Per-utterance alignments (sclite `.pra`): correct words lower case, errors upper case."""
    out = []
    for u in res.utts:
        c = u.counts
        refs, hyps, evals = [], [], []
        for r, h in u.pairs:
            if r is None:
                rr, hh, ev = "*" * len(h or ""), (h or "").upper(), "I"
            elif h is None:
                rr, hh, ev = r.upper(), "*" * len(r), "D"
            elif words_match(r, h):
                rr, hh, ev = r, h, ""
            else:
                rr, hh, ev = r.upper(), h.upper(), "S"
            w = max(len(rr), len(hh), len(ev))
            refs.append(rr.ljust(w))
            hyps.append(hh.ljust(w))
            evals.append(ev.ljust(w))
        out.append(f"id: ({u.speaker}-{u.key})\nScores: (#C #S #D #I) {c.corr} {c.sub} {c.dele} {c.ins}\n"
                   f"REF:  {' '.join(refs).rstrip()}\nHYP:  {' '.join(hyps).rstrip()}\n"
                   f"Eval: {' '.join(evals).rstrip()}\n\n")
    return "".join(out)


def confusions(res: SettingResult) -> tuple[Counter, Counter, Counter]:
    """(substitution pairs, insertions, deletions) counters."""
    subs, ins, dels = Counter(), Counter(), Counter()
    for u in res.utts:
        for r, h in u.pairs:
            if r is None:
                ins[h] += 1
            elif h is None:
                dels[r] += 1
            elif not words_match(r, h):
                subs[(r, h)] += 1
    return subs, ins, dels


def _dtl(title: str, res: SettingResult) -> str:
    """sclite `.dtl`-style detail: totals, confusion pairs, insertions, deletions."""
    c = res.total()
    subs, ins, dels = confusions(res)
    hyp_words = sum(1 for u in res.utts for _, h in u.pairs if h is not None)
    lines = [f"DETAILED OVERALL REPORT FOR THE SYSTEM: {title}", "",
             "SENTENCE RECOGNITION PERFORMANCE", "",
             f" sentences                          {c.snt:7d}",
             f" with errors                {100.0 * c.snt_err / max(c.snt, 1):5.1f}%   ({c.snt_err:5d})", "",
             "WORD RECOGNITION PERFORMANCE", "",
             f"Percent Total Error       =  {c.wer:5.1f}%   ({c.err:5d})", "",
             f"Percent Correct           =  {c.pct(c.corr):5.1f}%   ({c.corr:5d})", "",
             f"Percent Substitution      =  {c.pct(c.sub):5.1f}%   ({c.sub:5d})",
             f"Percent Deletions         =  {c.pct(c.dele):5.1f}%   ({c.dele:5d})",
             f"Percent Insertions        =  {c.pct(c.ins):5.1f}%   ({c.ins:5d})",
             f"Percent Word Accuracy     =  {100.0 - c.wer:5.1f}%", "",
             f"Ref. words                =           ({c.ref:5d})",
             f"Hyp. words                =           ({hyp_words:5d})",
             f"Aligned words             =           ({sum(len(u.pairs) for u in res.utts):5d})", ""]

    def block(name: str, items: list[tuple[str, int]]) -> list[str]:
        total = sum(n for _, n in items)
        rows = [f"{name}\t\tTotal                 ({total})", f"\t\tWith >=  1 occurances ({len(items)})", ""]
        rows += [f"{i:4d}:  {n:4d}  ->  {label}" for i, (label, n) in enumerate(items, 1)]
        rows += ["     -------", f"      {total:4d}", ""]
        return rows

    def ordered(counter: Counter, fmt) -> list[tuple[str, int]]:
        return [(fmt(k), n) for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]

    lines += block("CONFUSION PAIRS", ordered(subs, lambda k: f"{k[0]} ==> {k[1]}"))
    lines += block("INSERTIONS", ordered(ins, str))
    lines += block("DELETIONS", ordered(dels, str))
    return "\n".join(lines) + "\n"


def write_setting_files(out_dir: Path, title: str, res: SettingResult) -> None:
    """`score.sys`, `score.raw`, `score.pra`, `score.dtl`, `confusion_pairs`, `per_utt` under `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "score.sys", _sys_table(title, res, percent=True))
    atomic_write_text(out_dir / "score.raw", _sys_table(title, res, percent=False))
    atomic_write_text(out_dir / "score.pra", _pra(res))
    atomic_write_text(out_dir / "score.dtl", _dtl(title, res))
    subs, _, _ = confusions(res)
    atomic_write_text(out_dir / "confusion_pairs",
                      "".join(f"{n} {r} {h}\n" for (r, h), n in sorted(subs.items(), key=lambda kv: (-kv[1], kv[0]))))
    atomic_write_text(out_dir / "per_utt",
                      "".join(f"{u.key} #csid {u.counts.corr} {u.counts.sub} {u.counts.dele} {u.counts.ins}\n" for u in res.utts))


# ---------------------------------------------------------------------------------------------
# Settings sweep


_SETTING_RE = re.compile(r"lmwt_?(?P<lmwt>[0-9.]+)(?:_wip_?(?P<wip>-?[0-9.]+))?")


def setting_name(path: Path) -> str:
    """`hyp_lmwt10_wip0.5.txt` -> `lmwt10_wip0.5`; `hyp.txt` -> `hyp`."""
    stem = path.name[: -len(".txt")] if path.name.endswith(".txt") else path.name
    return stem[4:] if stem.startswith("hyp_") else stem


def parse_setting(name: str) -> dict:
    """LM weight / insertion penalty encoded in a setting name (None where absent)."""
    m = _SETTING_RE.search(name)
    if not m:
        return {"lm_weight": None, "wip": None}
    return {"lm_weight": float(m.group("lmwt").rstrip(".")),
            "wip": float(m.group("wip")) if m.group("wip") else None}


def summarize(res: SettingResult, subsets: list[str]) -> dict:
    """Counts over everything, each subset prefix, and the mean of the subset WERs."""
    d = res.total().to_dict()
    if subsets:
        subs = {p: res.total(p).to_dict() for p in subsets}
        d["subsets"] = subs
        wers = [s["wer"] for s in subs.values() if s["wer"] is not None]
        d["subset_avg_wer"] = round(sum(wers) / len(wers), 4) if wers else None
    return d


def check_vocabulary(refs: list[RefUtt], words_txt: Path, rules: list[GlmRule] | None, mode: str) -> dict:
    """Reference words absent from `words.txt`: an error (mode 'error') or a warning + counts."""
    vocab = {line.split()[0].lower() for line in words_txt.read_text().splitlines() if line.strip()}
    oov: Counter = Counter()
    first: dict[str, str] = {}
    n = 0
    for r in refs:
        for slot in parse_reference(r.text, rules, where=r.key):
            for w in slot[0]:
                n += 1
                if w not in vocab and w != HESITATION and not w.endswith("-") and not w.startswith("-"):
                    oov[w] += 1
                    first.setdefault(w, r.key)
    if oov and mode == "error":
        w = sorted(oov)[0]
        raise ValueError(f"{words_txt}: {len(oov)} reference word(s) not in the vocabulary, e.g. "
                         f"'{w}' in utterance '{first[w]}'")
    if oov:
        logger.warning("%d reference word types (%d tokens) not in %s, e.g. %s", len(oov), sum(oov.values()),
                       words_txt, ", ".join(sorted(oov)[:5]))
    return {"oov_types": len(oov), "oov_tokens": sum(oov.values()),
            "oov_rate_pct": round(100.0 * sum(oov.values()) / max(n, 1), 4)}


def load_references(ref: Path, glm_rules, utt2spk: Path | None) -> tuple[list[RefUtt], bool]:
    """References from an STM or a Kaldi text; returns (units, is_stm)."""
    if ref.suffix == ".stm" or ref.name == "stm":
        return read_stm(ref), True
    texts = read_kaldi_map(ref, allow_empty_value=True)
    if utt2spk is None and (ref.parent / "utt2spk").exists():
        utt2spk = ref.parent / "utt2spk"
    spk = read_kaldi_map(utt2spk) if utt2spk else {}
    return [RefUtt(u, spk.get(u, u), t) for u, t in sorted(texts.items())], False


def score_files(ref: Path, hyps: list[Path], out_dir: Path, glm: Path | None = None, utt2spk: Path | None = None,
                segments: Path | None = None, reco2fc: Path | None = None, subsets: list[str] | None = None,
                words_txt: Path | None = None, oov_mode: str = "warn", require_all: bool = False) -> dict:
    """Score each hypothesis file (a setting); write per-setting files, `wer-summary`, `wer.json`."""
    rules = read_glm(glm) if glm else None
    refs, is_stm = load_references(ref, rules, utt2spk)
    subsets = subsets or []
    if is_stm:
        if segments is None and (ref.parent / "segments").exists():
            segments = ref.parent / "segments"
        if reco2fc is None and (ref.parent / "reco2file_and_channel").exists():
            reco2fc = ref.parent / "reco2file_and_channel"
        if segments is None:
            raise ValueError(f"{ref}: scoring against an STM needs --segments (utt reco begin end)")
        seg_map = read_kaldi_map(segments)
        fc_map = read_kaldi_map(reco2fc) if reco2fc else None
    oov = check_vocabulary(refs, words_txt, rules, oov_mode) if words_txt else None
    summary: dict = {"ref": str(ref), "glm": str(glm) if glm else None, "settings": {}}
    results = {}
    for hyp_path in hyps:
        name = setting_name(hyp_path)
        hyp = read_hyp(hyp_path)
        if is_stm:
            hyp = stm_hypotheses(refs, hyp, seg_map, fc_map, str(hyp_path))
        res = score_setting(name, refs, hyp, rules, require_all=require_all, where=str(hyp_path))
        results[name] = res
        write_setting_files(out_dir / name if len(hyps) > 1 else out_dir, hyp_path.name, res)
        entry = summarize(res, subsets) | parse_setting(name) | {"hyp": str(hyp_path), "missing_utts": res.missing}
        summary["settings"][name] = entry
        logger.info("%s: WER %.2f%% [ %d / %d, %d ins, %d del, %d sub ]", name, res.total().wer, res.total().err,
                    res.total().ref, res.total().ins, res.total().dele, res.total().sub)
    ranked = sorted(summary["settings"].items(), key=lambda kv: (kv[1]["wer"] is None, kv[1]["wer"] or 0.0, kv[0]))
    best_name, best = ranked[0]
    summary.update({k: v for k, v in best.items() if k != "hyp"})
    summary["best_setting"] = best_name
    if oov is not None:
        summary["oov"] = oov
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "wer.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out_dir / "wer-summary", "settings\tWER\n" + "".join(
        f"{n}\t{e['wer']:.2f}\n" if e["wer"] is not None else f"{n}\tinf\n" for n, e in ranked))
    c = results[best_name].total()
    line = f"%WER {c.wer:.2f} [ {c.err} / {c.ref}, {c.ins} ins, {c.dele} del, {c.sub} sub ] {best_name}"
    for p in subsets:
        s = best["subsets"][p]
        line += f"\n%WER {s['wer'] if s['wer'] is not None else float('inf'):.2f} [ {s['err']} / {s['ref_words']} ] {p}"
    if subsets:
        line += f"\n%WER {best['subset_avg_wer']:.2f} average of {' '.join(subsets)}"
    atomic_write_text(out_dir / "best_wer", line + "\n")
    return summary


def parse_with_config(parser: argparse.ArgumentParser, argv: list[str] | None, section: str) -> argparse.Namespace:
    """Parse `argv`; options of `--config FILE` (YAML, mapping `section:` -> {option: value}) become
    defaults, so command-line flags override them. Unknown options in the file are an error."""
    import yaml

    parser.add_argument("--config", type=Path, help=f"YAML file; its '{section}:' mapping sets option defaults")
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path)
    known, _ = pre.parse_known_args(argv)
    if known.config is not None:
        doc = yaml.safe_load(known.config.read_text()) or {}
        values = doc.get(section, {}) if isinstance(doc, dict) else None
        if not isinstance(values, dict):
            raise ValueError(f"{known.config}: '{section}' must be a mapping of option: value")
        norm = {str(k).replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(norm) - {a.dest for a in parser._actions})
        if unknown:
            raise ValueError(f"{known.config}: unknown {section} option(s) {unknown}")
        parser.set_defaults(**norm)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", type=Path, required=True, help="Kaldi text, or an STM (*.stm / 'stm')")
    p.add_argument("--hyp", type=Path, nargs="+", required=True, help="Kaldi text hypothesis file(s), one per setting")
    p.add_argument("--dir", type=Path, required=True, help="output dir")
    p.add_argument("--glm", type=Path, help="NIST GLM word-mapping file")
    p.add_argument("--utt2spk", type=Path, help="speakers for a Kaldi-text reference (default: beside --ref)")
    p.add_argument("--segments", type=Path, help="Kaldi segments (STM mode; default: beside --ref)")
    p.add_argument("--reco2file-and-channel", type=Path, help="STM mode; default: beside --ref, else reco 'file-channel'")
    p.add_argument("--subsets", nargs="*", default=[], help="utterance-id/STM-file prefixes scored separately (sw_ en_)")
    p.add_argument("--words-txt", type=Path, help="check reference words against this vocabulary")
    p.add_argument("--oov", choices=["warn", "error"], default="warn", help="reference OOV handling with --words-txt")
    p.add_argument("--require-all", action="store_true", help="a reference utterance without hypothesis is an error")
    a = parse_with_config(p, argv, "score")
    setup_logging(log_file=Path(a.dir) / "log" / "score.log")
    s = score_files(a.ref, a.hyp, a.dir, a.glm, a.utt2spk, a.segments, a.reco2file_and_channel, a.subsets,
                    a.words_txt, a.oov, a.require_all)
    print((a.dir / "best_wer").read_text(), end="")
    logger.info("best setting %s: WER %s%%; written %s", s["best_setting"], s["wer"], a.dir)


if __name__ == "__main__":
    main()
