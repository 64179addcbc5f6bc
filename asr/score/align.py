"""Word alignment of a hypothesis against a reference network, with NIST sclite's costs and tie breaking.

sclite (`sclite -F -D`, as hubscr runs it) aligns by dynamic programming over the arcs of two word
networks. Its word-to-word distances, in thousandths here so that sums are exact integers:
  correct 0, substitution 4, insertion 3, deletion 3; deleting an optionally deletable `(w)` 2
  (it then counts as correct and as a reference word); deleting the null branch `@` 0.001 (not
  counted); `@` against `@` 1.
At each cell sclite keeps the substitution if it costs no more than the deletion and the
insertion, else the deletion if it is strictly cheaper than the insertion, else the insertion;
among several predecessor arcs (alternatives joining) the first one listed with the lowest cost
wins. The alignment is read back from the cheapest end cell. This module re-implements that
rule (read from SCTK's `net_dp.c` / `word.c`, not copied), so per-utterance counts are sclite's.

An alignment is a list of `(ref word or None, hyp word or None, eval)`; eval is `C`, `S`, `D` or `I`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from asr.score.glm import Slot, bare, is_optional

COR, SUB, INS, DEL, OPT_DEL, NULL_DEL, NULL_SUB = 0, 4000, 3000, 3000, 2000, 1, 1000  # sclite x 1000
NULL = "@"


def words_match(ref: str, hyp: str) -> bool:
    """sclite's word equality with fragments scored as correct (-F): `th-` matches a word starting
    with `th`, `-ing` one ending with `ing` (either side may be the fragment); `(w)` compares as `w`."""
    a, b = bare(ref), bare(hyp)
    if a == b:
        return True
    la, lb = len(a), len(b)
    if la > 1 and a[0] == "-":
        return lb >= la - 1 and b.endswith(a[1:])
    if la > 1 and a[-1] == "-":
        return b.startswith(a[:-1])
    if lb > 1 and b[0] == "-":
        return la >= lb - 1 and a.endswith(b[1:])
    if lb > 1 and b[-1] == "-":
        return a.startswith(b[:-1])
    return False


def _dist(ref: str | None, hyp: str | None) -> int:
    """sclite's `wwd_WORD` in thousandths (None: the empty word of an insertion/deletion)."""
    if hyp is None:
        return NULL_DEL if ref == NULL else (OPT_DEL if is_optional(ref) else DEL)  # type: ignore[arg-type]
    if ref is None:
        return NULL_DEL if hyp == NULL else (OPT_DEL if is_optional(hyp) else INS)
    if ref == NULL and hyp == NULL:
        return NULL_SUB
    return COR if words_match(ref, hyp) else SUB


@dataclass
class RefNetwork:
    """Reference arcs in topological order; arc 0 is the null head. `preds[a]`: the arcs entering
    the node arc `a` leaves (sclite's in-arc list, in order); `ends`: arcs entering the stop node."""

    words: list[str | None]
    preds: list[list[int]]
    ends: list[int]


def build_network(slots: list[Slot]) -> RefNetwork:
    """Slots -> network: one arc per word, alternatives in the order written, `()` as an `@` arc."""
    words: list[str | None] = [None]
    preds: list[list[int]] = [[]]
    into = [0]  # arcs entering the current node
    for slot in slots:
        joined: list[int] = []
        for alt in slot:
            cur = into
            for w in alt or (NULL,):
                words.append(w)
                preds.append(list(cur))
                cur = [len(words) - 1]
            joined.extend(cur)
        into = joined
    return RefNetwork(words, preds, into)


def align_network(net: RefNetwork, hyp: list[str]) -> list[tuple[str | None, str | None, str]]:
    """sclite's alignment of linear hypothesis `hyp` against `net`."""
    m = len(hyp)
    n_arcs = len(net.words)
    inf = math.inf
    cost = [[inf] * (m + 1) for _ in range(n_arcs)]
    back: list[list[tuple[int, int]]] = [[(-1, -1)] * (m + 1) for _ in range(n_arcs)]
    cost[0][0] = 0
    ins = [_dist(None, h) for h in hyp]
    for b in range(1, m + 1):
        cost[0][b] = cost[0][b - 1] + ins[b - 1]
        back[0][b] = (0, b - 1)
    for a in range(1, n_arcs):
        w = net.words[a]
        preds = net.preds[a]
        row, brow = cost[a], back[a]
        d_del = _dist(w, None)
        # column 0: deletions only
        best, pa = inf, -1
        for p in preds:
            if cost[p][0] < best:
                best, pa = cost[p][0], p
        row[0], brow[0] = best + d_del, (pa, 0)
        single = preds[0] if len(preds) == 1 else -1
        for b in range(1, m + 1):
            c_ins = row[b - 1] + ins[b - 1]
            if single >= 0:
                prow = cost[single]
                c_del, da = prow[b] + d_del, single
                c_sub, sa = prow[b - 1] + _dist(w, hyp[b - 1]), single
            else:
                c_del, da = inf, -1
                c_sub, sa = inf, -1
                for p in preds:
                    if cost[p][b] < c_del:
                        c_del, da = cost[p][b], p
                for p in preds:
                    if cost[p][b - 1] < c_sub:
                        c_sub, sa = cost[p][b - 1], p
                c_del += d_del
                c_sub += _dist(w, hyp[b - 1])
            if c_sub <= c_del and c_sub <= c_ins:
                row[b], brow[b] = c_sub, (sa, b - 1)
            elif c_del < c_ins:
                row[b], brow[b] = c_del, (da, b)
            else:
                row[b], brow[b] = c_ins, (a, b - 1)
    best, a = inf, -1
    for e in net.ends:
        if cost[e][m] < best:
            best, a = cost[e][m], e
    b = m
    out: list[tuple[str | None, str | None, str]] = []
    while a > 0 or b > 0:
        pa, pb = back[a][b]
        if pa == a:  # insertion
            h = hyp[b - 1]
            out.append((None, h, "C" if is_optional(h) else "I"))
        elif pb == b:  # deletion
            w = net.words[a]
            if w != NULL:
                out.append((w, None, "C" if is_optional(w) else "D"))  # type: ignore[arg-type]
        else:
            w, h = net.words[a], hyp[b - 1]
            if not (w == NULL and h == NULL):
                out.append((w, h, "C" if words_match(w, h) else "S"))  # type: ignore[arg-type]
        a, b = pa, pb
    out.reverse()
    return out


def align(slots: list[Slot], hyp: list[str]) -> list[tuple[str | None, str | None, str]]:
    """Align hypothesis words to reference slots (see the module docstring)."""
    return align_network(build_network(slots), hyp)


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


def count_alignment(pairs: list[tuple[str | None, str | None, str]]) -> Counts:
    """Counts of one aligned utterance (`# Wrd` = reference words: C, S, D with a reference word)."""
    c = Counts(snt=1)
    for r, _h, ev in pairs:
        if ev == "I":
            c.ins += 1
            continue
        if r is not None:
            c.ref += 1
        if ev == "C":
            c.corr += 1 if r is not None else 0
        elif ev == "S":
            c.sub += 1
        elif ev == "D":
            c.dele += 1
    c.snt_err = int(c.err > 0)
    return c
