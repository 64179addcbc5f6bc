"""asr.report: which test WER the comparison reports (hand-made scoring summaries)."""

from __future__ import annotations

import pytest

from asr import report


def _wer_json(settings: dict[str, float]) -> dict:
    """A wer.json as asr.score writes it, for settings named lmwt<W>_wip<P>."""
    entries = {}
    for name, wer in settings.items():
        lmwt, wip = name[len("lmwt"):].split("_wip")
        entries[name] = {"wer": wer, "lm_weight": float(lmwt), "wip": float(wip)}
    best = min(settings, key=settings.get)
    return {"settings": entries, "best_setting": best, "wer": settings[best]}


def test_default_setting_is_lm_weight_one_over_acoustic_scale_without_penalty():
    wer = _wer_json({"lmwt8_wip0": 3.0, "lmwt10_wip0": 2.5, "lmwt10_wip0.5": 1.0, "lmwt12_wip0": 2.0})
    assert report.default_setting_wer(wer, 0.1) == 2.5
    assert report.default_setting_wer(wer, 0.125) == 3.0
    assert report.default_setting_wer(wer, 0.05) is None  # not decoded at LM weight 20: n/a


def test_tuned_wer_applies_the_tuning_sets_best_setting_to_test():
    test = _wer_json({"lmwt8_wip0": 3.0, "lmwt10_wip0": 2.5, "lmwt12_wip0.5": 1.5})
    dev = _wer_json({"lmwt8_wip0": 4.0, "lmwt10_wip0": 2.0, "lmwt12_wip0.5": 3.0})
    # dev prefers lmwt10_wip0: test is reported there (2.5), not at its own best (1.5)
    assert report.tuned_wer(test, dev, "x") == {"tuned_setting": "lmwt10_wip0", "wer_tuned": 2.5,
                                                 "wer_tune_set": 2.0}
    other = _wer_json({"lmwt14_wip0": 1.0})
    with pytest.raises(ValueError, match="lmwt14_wip0"):
        report.tuned_wer(test, other, "exp/am_x/decode_test/wer.json")


def test_table_shows_tuned_column_only_when_every_row_has_it():
    row = {"model": "resnet22", "flops_per_frame": 2e6, "params": 3e5, "cv_frame_acc": 0.5,
           "wer_default_setting": 2.5, "wer_best_sweep": 1.5, "rtf": 0.03, "rtf_nn": 0.01, "rtf_search": 0.02,
           "train_frames_per_s": 6000.0}
    plain = report.format_table([row])
    assert "tuned" not in plain and "| resnet22 | 2.00 | 1.00 | 0.300 | 50.00 | 2.50 | 1.50 |" in plain
    assert "RTF network | RTF search | RTF total (1 core)" in plain and "| 0.0100 | 0.0200 | 0.0300 |" in plain
    tuned = report.format_table([row | {"wer_tuned": 2.25, "tuned_setting": "lmwt12_wip0.5"}])
    assert "tuned setting" in tuned and "| 50.00 | 2.25 | lmwt12_wip0.5 | 2.50 | 1.50 |" in tuned
    # a test set decoded by the 1-best search at the tuned setting only: no default or sweep figure
    fast = report.format_table([row | {"wer_tuned": 2.25, "tuned_setting": "lmwt12_wip0.5",
                                       "wer_default_setting": None, "wer_best_sweep": None}])
    assert "| 50.00 | 2.25 | lmwt12_wip0.5 | n/a | n/a |" in fast


def test_pooled_test_over_seeds_covers_training_noise():
    """One seed: the paired test's figures. Seeds that disagree widen the interval; the
    difference is that of the mean WERs."""
    import numpy as np

    from asr.significance import paired_test, pooled_paired_test

    rng = np.random.default_rng(0)
    words = rng.integers(3, 12, 400)
    a = rng.binomial(words, 0.10, (3, 400))
    b = rng.binomial(words, 0.07, (3, 400))
    one = pooled_paired_test(a[:1], b[:1], words)
    assert one["diff"] == paired_test(a[0], b[0], words)["diff"] and (one["seeds_a"], one["seeds_b"]) == (1, 1)
    pooled = pooled_paired_test(a, b, words)
    assert pooled["diff"] == round(100 * (b.mean(0).sum() - a.mean(0).sum()) / words.sum(), 2)
    assert pooled["ci"][0] < pooled["diff"] < pooled["ci"][1] < 0 and pooled["p"] < 0.01
    # a system whose seeds scatter (one run much worse) gets a wider interval than steady seeds
    scattered = b.copy()
    scattered[0] = rng.binomial(words, 0.16)
    wide = pooled_paired_test(a, scattered, words)
    assert wide["ci"][1] - wide["ci"][0] > pooled["ci"][1] - pooled["ci"][0]
    with pytest.raises(ValueError, match="same utterances"):
        pooled_paired_test(a, b[:, :10], words)
