"""Scoring: hand-worked WER cases (expected figures worked out by hand, written below)."""

from __future__ import annotations

import json

import pytest

from asr.score import align, count_alignment, main, normalize_hypothesis, parse_glm, parse_reference

GLM = """;; test GLM in the NIST layout
* name "test.glm"
* format = 'NIST1'
* copy_no_hit = 'T'
* case_sensitive = 'F'
UH => %HESITATION / [ ] __ [ ]
UM => %HESITATION / [ ] __ [ ]   ;; hesitation
I'M => { I'M / I AM } / [ ] __ [ ]
GONNA => { GONNA / GOING TO / @ } / [ ] __ [ ]
ALL RIGHT => { ALL RIGHT / ALRIGHT }
"""


def csid(ref: str, hyp: str, glm: str | None = None):
    rules = parse_glm(glm) if glm else None
    c = count_alignment(align(parse_reference(ref, rules), normalize_hypothesis(hyp.split(), rules)))
    return c.corr, c.sub, c.dele, c.ins, c.ref


def test_substitution_deletion_insertion():
    # the cat sat on the mat / the bat sat the mat mat: cat->bat (S), on deleted (D), extra mat (I)
    assert csid("the cat sat on the mat", "the bat sat the mat mat") == (4, 1, 1, 1, 6)
    # 3 errors over 6 reference words = 50 %
    c = count_alignment(align(parse_reference("the cat sat on the mat"), "the bat sat the mat mat".split()))
    assert c.wer == pytest.approx(50.0)
    assert c.snt_err == 1


def test_substitution_preferred_to_insertion_plus_deletion():
    # sclite weights: sub 4 < ins 3 + del 3, so a b c / a x c is one substitution
    assert csid("a b c", "a x c") == (2, 1, 0, 0, 3)


def test_empty_hypothesis_is_all_deletions():
    assert csid("one two three", "") == (0, 0, 3, 0, 3)


def test_empty_reference_counts_insertions():
    c = count_alignment(align(parse_reference(""), ["hello", "there"]))
    assert (c.corr, c.sub, c.dele, c.ins, c.ref) == (0, 0, 0, 2, 0)
    assert c.wer == float("inf")
    empty = count_alignment(align(parse_reference(""), []))
    assert empty.wer == 0.0 and empty.snt_err == 0


def test_glm_alternatives_match_either_branch():
    # ref "i'm going home": i'm -> { i'm / i am }; hyp "i am going home" matches the second branch
    assert csid("i'm going home", "i am going home", GLM) == (4, 0, 0, 0, 4)
    assert csid("i'm going home", "i'm going home", GLM) == (3, 0, 0, 0, 3)
    # multi-word left-hand side: "all right" -> { all right / alright }
    assert csid("all right then", "alright then", GLM) == (2, 0, 0, 0, 2)
    # the null branch '@': "gonna" may be omitted at no cost
    assert csid("we gonna win", "we win", GLM) == (2, 0, 0, 0, 2)


def test_hesitations_and_noise_removed():
    # ref (%hesitation) optional; hyp "um" -> %hesitation -> dropped; [noise], <unk> dropped.
    # sclite -D: the deleted optional word counts as correct and as a reference word
    assert csid("(%hesitation) well [noise] yes", "um well <unk> yes [laughter]", GLM) == (3, 0, 0, 0, 3)
    # a bare "uh" in the reference maps to %hesitation and becomes optionally deletable too
    assert csid("uh yes", "yes", GLM) == (2, 0, 0, 0, 2)


def test_optional_word_recognised_counts_correct_and_fragment_matches():
    # (so) recognised -> correct and counted; (th-) fragment matches "that" (sclite -F)
    assert csid("(so) (th-) that is it", "so that that is it") == (5, 0, 0, 0, 5)
    # fragment omitted -> correct (deleting an optional word costs 2, counts as correct)
    assert csid("(th-) that is it", "that is it") == (4, 0, 0, 0, 4)
    # optional word against another word: substitution (4) beats omission (2) + insertion (3)
    assert csid("(so) yes", "no yes") == (1, 1, 0, 0, 2)
    # fragments match on either side: hypothesis fragment "wo-" against "word"
    assert csid("word here", "wo- here") == (2, 0, 0, 0, 2)


def test_cli_files_subsets_sweep_and_missing_utterance(tmp_path, capfd):
    ref = tmp_path / "text"
    ref.write_text("en_1-a_0001 hello world\nen_1-a_0002 good morning\nsw_2-b_0001 yes i'm here\n")
    (tmp_path / "utt2spk").write_text("en_1-a_0001 en_1-a\nen_1-a_0002 en_1-a\nsw_2-b_0001 sw_2-b\n")
    glm = tmp_path / "glm"
    glm.write_text(GLM)
    # setting 1: en: 1 sub of 4 words; sw: "yes i am here" vs { i'm / i am } -> 0 errors of 4 words
    h1 = tmp_path / "hyp_lmwt10_wip0.0.txt"
    h1.write_text("en_1-a_0001 hello word\nen_1-a_0002 good morning\nsw_2-b_0001 yes i am here\n")
    # setting 2: en_1-a_0002 missing -> 2 deletions; en: 2 del of 4; sw: 1 ins ("uh" is dropped, "oh" not)
    h2 = tmp_path / "hyp_lmwt12_wip0.5.txt"
    h2.write_text("en_1-a_0001 hello world\nsw_2-b_0001 oh uh yes i'm here\n")
    out = tmp_path / "scoring"
    main(["--ref", str(ref), "--hyp", str(h1), str(h2), "--dir", str(out), "--glm", str(glm),
          "--subsets", "sw_", "en_"])
    w = json.loads((out / "wer.json").read_text())
    s1, s2 = w["settings"]["lmwt10_wip0.0"], w["settings"]["lmwt12_wip0.5"]
    # setting 1: 1 error over 8 reference words (4 en + 4 sw) = 12.5 %; en 25 %, sw 0 %, avg 12.5
    assert (s1["err"], s1["ref_words"], s1["wer"]) == (1, 8, 12.5)
    assert s1["subsets"]["en_"]["wer"] == 25.0 and s1["subsets"]["sw_"]["wer"] == 0.0
    assert s1["subset_avg_wer"] == 12.5
    # setting 2: 2 del + 1 ins over 4 + 3 words ("i'm" is one word) = 3/7 = 42.857 %
    assert (s2["del"], s2["ins"], s2["ref_words"]) == (2, 1, 7)
    assert s2["wer"] == pytest.approx(42.8571, abs=1e-3)
    assert s2["missing_utts"] == ["en_1-a_0002"]
    assert "no hypothesis, e.g. 'en_1-a_0002'" in capfd.readouterr().err
    assert w["best_setting"] == "lmwt10_wip0.0" and w["lm_weight"] == 10.0 and w["wip"] == 0.0
    summary = (out / "wer-summary").read_text().splitlines()
    assert summary[0] == "settings\tWER" and summary[1] == "lmwt10_wip0.0\t12.50"
    sys_text = (out / "lmwt10_wip0.0" / "score.sys").read_text()
    assert "Sum/Avg" in sys_text and "en_1-a" in sys_text
    # en_1-a: 2 sentences, 4 words, 3 correct (75.0), 1 sub (25.0), S.Err 50.0
    line = next(ln for ln in sys_text.splitlines() if "| en_1-a" in ln)
    assert line.split()[1:] == ["en_1-a", "|", "2", "4", "|", "75.0", "25.0", "0.0", "0.0", "25.0", "50.0", "|"]
    pra = (out / "lmwt10_wip0.0" / "score.pra").read_text()
    assert "REF:  hello WORLD" in pra and "HYP:  hello WORD" in pra
    assert "world ==> word" in (out / "lmwt10_wip0.0" / "score.dtl").read_text()


def test_errors_name_the_utterance(tmp_path):
    ref = tmp_path / "text"
    ref.write_text("u1 a b\nu2 c\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("u1 a b\nu3 c\n")
    with pytest.raises(ValueError, match="u3"):
        main(["--ref", str(ref), "--hyp", str(hyp), "--dir", str(tmp_path / "s")])
    hyp.write_text("u1 a b\n")
    with pytest.raises(ValueError, match="u2"):
        main(["--ref", str(ref), "--hyp", str(hyp), "--dir", str(tmp_path / "s"), "--require-all"])
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\na 1\nb 2\n")
    with pytest.raises(ValueError, match="'c' in utterance 'u2'"):
        main(["--ref", str(ref), "--hyp", str(hyp), "--dir", str(tmp_path / "s"), "--words-txt", str(words),
              "--oov", "error"])


def test_stm_reference_with_segments(tmp_path):
    stm = tmp_path / "stm"
    stm.write_text(";; comment\n"
                   "en_4156 A en_4156_A 1.00 3.00 <O,en,F,en-F> (%HESITATION) HE IS A POLICE OFFICER\n"
                   "en_4156 A en_4156_A 3.00 4.00 <O,en,F,en-F> IGNORE_TIME_SEGMENT_IN_SCORING\n"
                   "sw_4390 B sw_4390_B 0.50 2.00 <O,en,M,en-M> YEAH (TH-) THAT'S RIGHT\n"
                   "sw_4390 B sw_4390_B 2.00 2.50 <O,en,M,en-M> (%HESITATION) [LAUGHTER]\n")
    (tmp_path / "segments").write_text("en_4156-A_0001 en_4156-A 1.00 3.00\nsw_4390-B_0001 sw_4390-B 0.50 2.00\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("en_4156-A_0001 uh he is the police officer\nsw_4390-B_0001 yeah that's right\n")
    main(["--ref", str(stm), "--hyp", str(hyp), "--dir", str(tmp_path / "s"), "--glm",
          str(_write(tmp_path / "glm", GLM)), "--subsets", "sw_", "en_"])
    w = json.loads((tmp_path / "s" / "wer.json").read_text())
    # en: 6 words ((%hesitation) deleted counts correct), a -> the (1 sub); sw: 4 words, 0 errors;
    # the optional-only segment: 1 word, correct -> total 1/11
    assert (w["err"], w["ref_words"]) == (1, 11)
    assert w["subsets"]["en_"]["wer"] == pytest.approx(16.6667) and w["subsets"]["sw_"]["wer"] == 0.0
    assert w["subset_avg_wer"] == pytest.approx(8.3333)
    # the segment of optional words only has no hypothesis utterance: not reported missing
    assert w["missing_utts"] == [] and w["sentences"] == 3


def _write(path, text):
    path.write_text(text)
    return path


def test_yaml_config_sets_defaults_and_rejects_unknown_options(tmp_path):
    ref = _write(tmp_path / "text", "sw_1-a_1 a b\nen_1-a_1 c d\n")
    hyp = _write(tmp_path / "hyp.txt", "sw_1-a_1 a b\nen_1-a_1 c x\n")
    conf = _write(tmp_path / "decode.yaml", "decode:\n  beam: 13\nscore:\n  subsets: [sw_, en_]\n")
    main(["--config", str(conf), "--ref", str(ref), "--hyp", str(hyp), "--dir", str(tmp_path / "s")])
    w = json.loads((tmp_path / "s" / "wer.json").read_text())
    # sw_: 0 of 2; en_: 1 sub of 2 = 50 %; average 25 %
    assert w["subsets"]["en_"]["wer"] == 50.0 and w["subset_avg_wer"] == 25.0
    _write(conf, "score:\n  subset: [sw_]\n")
    with pytest.raises(ValueError, match=r"unknown score option\(s\) \['subset'\]"):
        main(["--config", str(conf), "--ref", str(ref), "--hyp", str(hyp), "--dir", str(tmp_path / "s")])
