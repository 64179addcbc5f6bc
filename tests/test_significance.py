"""asr.significance: bootstrap intervals and the paired test, against kaldialign and known cases."""

from __future__ import annotations

import numpy as np
import pytest

from asr import significance


def _random_system(rng, n_utts: int, err_rate: float):
    """Reference and hypothesis word lists with substitutions only (no alignment ties)."""
    refs, hyps = [], []
    for _ in range(n_utts):
        ref = [f"w{int(x)}" for x in rng.integers(0, 50, size=int(rng.integers(3, 12)))]
        hyp = [w if rng.random() > err_rate else "zz" for w in ref]
        refs.append(ref)
        hyps.append(hyp)
    return refs, hyps


def test_interval_matches_kaldialign_bootstrap_on_unambiguous_alignments():
    import kaldialign

    rng = np.random.default_rng(0)
    refs, hyps = _random_system(rng, 400, 0.15)
    errors = np.array([sum(r != h for r, h in zip(a, b)) for a, b in zip(refs, hyps)])
    words = np.array([len(r) for r in refs])
    ours = significance.wer_ci(errors, words)
    theirs = kaldialign.bootstrap_wer_ci(refs, hyps)
    assert ours["wer"] == pytest.approx(100 * theirs["wer"], abs=0.3)
    assert ours["ci"][0] == pytest.approx(100 * theirs["ci95min"], abs=0.3)
    assert ours["ci"][1] == pytest.approx(100 * theirs["ci95max"], abs=0.3)
    assert ours["ci"][0] < ours["wer"] < ours["ci"][1]


def test_paired_test_separates_a_real_difference_and_not_noise():
    rng = np.random.default_rng(1)
    words = rng.integers(4, 12, size=500)
    a = rng.binomial(words, 0.10)
    worse = a + rng.binomial(words, 0.05)          # b makes every error of a, and more
    same = rng.permutation(a)                       # same total errors, other utterances
    real = significance.paired_test(a, worse, words)
    assert real["diff"] > 0 and real["ci"][0] > 0 and real["p"] < 0.001
    assert "worse, separable" in significance.verdict(real, "base", "b", "test")
    null = significance.paired_test(a, same, words)
    assert null["diff"] == 0.0 and null["ci"][0] < 0 < null["ci"][1] and null["p"] > 0.5
    assert "not separable" in significance.verdict(null, "base", "b", "test")
    # pairing matters: the paired interval of a correlated pair is narrower than unpaired ones
    wa, wb = significance.wer_ci(a, words), significance.wer_ci(worse, words)
    assert real["ci"][1] - real["ci"][0] < (wa["ci"][1] - wa["ci"][0]) + (wb["ci"][1] - wb["ci"][0])


def test_empty_reference_and_mismatched_utterances_are_errors():
    with pytest.raises(ValueError, match="no reference words"):
        significance.wer_ci(np.array([0, 0]), np.array([0, 0]))
    with pytest.raises(ValueError, match="same utterances"):
        significance.paired_test(np.array([1, 2]), np.array([1]), np.array([3, 3]))


def test_utterance_counts_follow_asr_score(tmp_path):
    (tmp_path / "ref").write_text("u1 a b c d\nu2 e f\nu3 g\n")
    (tmp_path / "hyp").write_text("u1 a x c d e\nu2 e f\nu3\n")
    keys, errors, words = significance.utterance_counts(tmp_path / "ref", tmp_path / "hyp")
    assert keys == ["u1", "u2", "u3"]
    assert errors.tolist() == [2, 0, 1] and words.tolist() == [4, 2, 1]


def test_cli_compares_two_decodes_of_the_same_utterances(tmp_path, capsys):
    """`python -m asr.significance --ref --hyp A B`: files scored with asr.score, the paired test
    on them; an utterance missing from a hypothesis file counts as all deletions (as in sclite)."""
    import json

    rng = np.random.default_rng(2)
    refs, hyps = _random_system(rng, 300, 0.05)
    _, worse = _random_system(np.random.default_rng(2), 300, 0.25)   # same references, more errors
    ids = [f"u{i:04d}" for i in range(300)]
    def write(name, rows):
        p = tmp_path / name
        p.write_text("".join(f"{u} {' '.join(w)}\n" for u, w in zip(ids, rows)))
        return p
    ref, a, b = write("ref.txt", refs), write("a.txt", hyps), write("b.txt", worse)
    significance.main(["--ref", str(ref), "--hyp", str(a), str(b), "--names", "base", "new"])
    out = json.loads(capsys.readouterr().out)
    assert out["utterances"] == 300 and out["words"] == sum(len(r) for r in refs)
    assert out["new"]["wer"] > out["base"]["wer"] and out["paired"]["ci"][0] > 0
    assert out["paired"]["diff"] == pytest.approx(out["new"]["wer"] - out["base"]["wer"], abs=0.02)
    assert "new is worse, separable" in out["verdict"]
    short = tmp_path / "short.txt"
    short.write_text(a.read_text().split("\n", 1)[1])
    res = significance.compare(ref, a, short)
    assert res["utterances"] == 300
    assert res["paired"]["diff"] == pytest.approx(100 * len(refs[0]) / res["words"], abs=0.01)
