"""How sure a WER is: bootstrap confidence intervals and the paired test between two systems.

Both resample whole utterances with replacement (Bisani & Ney, 2004; Kaldi's compute-wer-bootci):
a replicate's WER is the sum of its utterances' errors over the sum of their reference words.
The per-utterance counts come from `asr.score`, so the intervals sit around exactly the WER the
scoring reports (kaldialign's `bootstrap_wer_ci` re-aligns with its own tie breaking, which
differs from sclite's on high-error data; `tests/test_significance.py` checks that both agree
where the alignment is unambiguous).

- `wer_ci(errors, words)`: 95% interval of one system's WER (%).
- `paired_test(errors_a, errors_b, words)`: WER(b) - WER(a) in % absolute, its 95% interval,
  and a two-sided p-value for "no difference" (the bootstrap distribution of the difference,
  shifted to mean zero, reaching at least the observed |difference|).
- `pooled_paired_test(errors_a, errors_b, words)`: the same over several training runs (seeds) of
  each system: the difference of the mean WERs over seeds, with a two-level bootstrap that
  resamples the utterances (the same draw for every run: paired) and, independently per system,
  the seeds (with replacement), so the interval covers test-set sampling and training noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

REPLICATIONS = 10000


def _replicate_indices(n: int, replications: int, seed: int) -> np.ndarray:
    """(replications, n) utterance indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(replications, n))


def wer_ci(errors: np.ndarray, words: np.ndarray, replications: int = REPLICATIONS,
           seed: int = 0) -> dict:
    """{wer, ci: [lo, hi]} in %: point WER and the 95% bootstrap interval over utterances."""
    errors, words = np.asarray(errors, np.float64), np.asarray(words, np.float64)
    if words.sum() <= 0:
        raise ValueError("no reference words: a WER needs a non-empty reference")
    idx = _replicate_indices(len(words), replications, seed)
    reps = 100.0 * errors[idx].sum(1) / np.maximum(words[idx].sum(1), 1.0)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    return {"wer": round(100.0 * errors.sum() / words.sum(), 2), "ci": [round(float(lo), 2), round(float(hi), 2)]}


def paired_test(errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray,
                replications: int = REPLICATIONS, seed: int = 0) -> dict:
    """{diff, ci: [lo, hi], p}: WER(b) - WER(a) (% absolute) on the same utterances, its 95%
    paired-bootstrap interval and two-sided p-value."""
    a, b = np.asarray(errors_a, np.float64), np.asarray(errors_b, np.float64)
    words = np.asarray(words, np.float64)
    if not (len(a) == len(b) == len(words)):
        raise ValueError(f"paired test needs the same utterances: {len(a)}, {len(b)}, {len(words)}")
    if words.sum() <= 0:
        raise ValueError("no reference words: a WER needs a non-empty reference")
    diff = 100.0 * (b.sum() - a.sum()) / words.sum()
    idx = _replicate_indices(len(words), replications, seed)
    reps = 100.0 * (b[idx].sum(1) - a[idx].sum(1)) / np.maximum(words[idx].sum(1), 1.0)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    p = float(np.mean(np.abs(reps - reps.mean()) >= abs(diff) - 1e-12))
    return {"diff": round(float(diff), 2), "ci": [round(float(lo), 2), round(float(hi), 2)],
            "p": round(p, 4)}


def pooled_paired_test(errors_a: np.ndarray, errors_b: np.ndarray, words: np.ndarray,
                       replications: int = REPLICATIONS, seed: int = 0) -> dict:
    """{diff, ci: [lo, hi], p, seeds_a, seeds_b}: mean-over-seeds WER(b) minus mean-over-seeds
    WER(a) (% absolute) on the same utterances. `errors_a` (seeds_a, utterances) and `errors_b`
    (seeds_b, utterances): per-utterance errors of each training run; `words` (utterances,).
    Each replicate draws utterances with replacement (one draw shared by all runs) and, for each
    system apart, as many seeds as it has with replacement."""
    a, b = np.atleast_2d(np.asarray(errors_a, np.float64)), np.atleast_2d(np.asarray(errors_b, np.float64))
    words = np.asarray(words, np.float64)
    if not (a.shape[1] == b.shape[1] == len(words)):
        raise ValueError(f"pooled test needs the same utterances: {a.shape[1]}, {b.shape[1]}, {len(words)}")
    if words.sum() <= 0:
        raise ValueError("no reference words: a WER needs a non-empty reference")
    diff = 100.0 * (b.mean(0).sum() - a.mean(0).sum()) / words.sum()
    rng = np.random.default_rng(seed)
    reps = np.empty(replications)
    # per utterance sums over a seed draw: (replications, utterances) via seed counts per replicate
    ca = rng.multinomial(a.shape[0], [1 / a.shape[0]] * a.shape[0], size=replications) / a.shape[0]
    cb = rng.multinomial(b.shape[0], [1 / b.shape[0]] * b.shape[0], size=replications) / b.shape[0]
    idx = rng.integers(0, len(words), size=(replications, len(words)))
    for r in range(replications):
        ea, eb = ca[r] @ a[:, idx[r]], cb[r] @ b[:, idx[r]]
        reps[r] = 100.0 * (eb.sum() - ea.sum()) / max(words[idx[r]].sum(), 1.0)
    lo, hi = np.percentile(reps, [2.5, 97.5])
    p = float(np.mean(np.abs(reps - reps.mean()) >= abs(diff) - 1e-12))
    return {"diff": round(float(diff), 2), "ci": [round(float(lo), 2), round(float(hi), 2)], "p": round(p, 4),
            "seeds_a": int(a.shape[0]), "seeds_b": int(b.shape[0])}


def utterance_counts(ref: str | Path, hyp: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(utterance ids, errors, reference words) per utterance of `ref` (Kaldi text) scored
    against `hyp` with asr.score's sclite-style alignment."""
    from asr.score import load_references, read_hyp, score_setting

    refs, _ = load_references(Path(ref), None, None)
    res = score_setting(Path(hyp).name, refs, read_hyp(hyp), None, where=str(hyp))
    keys = [u.key for u in res.utts]
    return (keys, np.array([u.counts.err for u in res.utts], np.int64),
            np.array([u.counts.ref for u in res.utts], np.int64))


def verdict(pair: dict, name_a: str, name_b: str, set_name: str) -> str:
    """One sentence saying whether b and a are separable on `set_name` at the 95% level."""
    lo, hi = pair["ci"]
    what = (f"{name_b} minus {name_a} on `{set_name}`: {pair['diff']:+.2f} absolute "
            f"[95% CI {lo:+.2f}, {hi:+.2f}], p = {pair['p']:.3f}")
    if lo > 0:
        return f"{what}: {name_b} is worse, separable at the 95% level."
    if hi < 0:
        return f"{what}: {name_b} is better, separable at the 95% level."
    return f"{what}: the interval holds 0, so the two are not separable on this data."


def compare(ref: str | Path, hyp_a: str | Path, hyp_b: str | Path, name_a: str = "a", name_b: str = "b",
            set_name: str = "test") -> dict:
    """Two systems' hypotheses (Kaldi text) of the same utterances, scored against `ref`: each
    one's WER with its interval, the paired test of b minus a and its verdict. Raises ValueError
    naming the files when they do not cover the same utterances."""
    keys_a, err_a, words = utterance_counts(ref, hyp_a)
    keys_b, err_b, _ = utterance_counts(ref, hyp_b)
    if keys_a != keys_b:
        raise ValueError(f"{hyp_a} and {hyp_b} score different utterances of {ref}")
    pair = paired_test(err_a, err_b, words)
    return {name_a: wer_ci(err_a, words), name_b: wer_ci(err_b, words), "paired": pair,
            "words": int(words.sum()), "utterances": len(keys_a),
            "verdict": verdict(pair, name_a, name_b, set_name)}


def main(argv: list[str] | None = None) -> None:
    """`python -m asr.significance --ref data/test/text --hyp A/hyp.txt B/hyp.txt [--names a b]`:
    prints compare()'s result as JSON (and the verdict on stderr's log)."""
    import argparse
    import json

    p = argparse.ArgumentParser(description="WER intervals and the paired bootstrap test of two decodes")
    p.add_argument("--ref", required=True, help="reference Kaldi text")
    p.add_argument("--hyp", nargs=2, required=True, metavar=("A", "B"), help="hypotheses (Kaldi text) of a and b")
    p.add_argument("--names", nargs=2, default=["a", "b"], metavar=("A", "B"))
    p.add_argument("--set-name", default="test")
    a = p.parse_args(argv)
    print(json.dumps(compare(a.ref, *a.hyp, *a.names, a.set_name), default=float))


if __name__ == "__main__":
    main()
