"""Lang dir: symbol tables, disambiguation, topology and the lexicon FST."""

from __future__ import annotations

from pathlib import Path

import kaldi_hmm_gmm as khg
import kaldifst
import pytest

from asr.lang import add_lex_disambig, load_lang, prepare_lang, read_symbol_table

LEXICON = """<unk> SPN
!sil SIL
a AH
ba B AH
bad B AH D
bat B AH T
cat K AH T
doe D OW
dough D OW
"""


def _dict_dir(root: Path, lexicon: str = LEXICON) -> Path:
    d = root / "dict"
    d.mkdir(parents=True, exist_ok=True)
    (d / "silence_phones.txt").write_text("SIL\nSPN\nNSN\n")
    (d / "optional_silence.txt").write_text("SIL\n")
    (d / "nonsilence_phones.txt").write_text("AH\nB\nD\nK\nOW\nT\n")
    (d / "extra_questions.txt").write_text("")
    (d / "lexicon.txt").write_text(lexicon)
    return d


def _linear(labels: list[int]) -> kaldifst.StdVectorFst:
    f = kaldifst.StdVectorFst()
    s = f.add_state()
    f.start = s
    for lab in labels:
        n = f.add_state()
        f.add_arc(s, kaldifst.StdArc(lab, lab, 0.0, n))
        s = n
    f.set_final(s, 0.0)
    return f


def _words_for_phones(L: kaldifst.StdVectorFst, phone_ids: list[int]) -> list[int] | None:
    A = _linear(phone_ids)
    kaldifst.arcsort(L, sort_type="ilabel")
    out = kaldifst.compose(A, L)
    if out.num_states == 0:
        return None
    best = kaldifst.shortest_path(out)
    ok, _, olabels, _ = kaldifst.get_linear_symbol_sequence(best)
    assert ok
    return list(olabels)


def test_symbol_tables_and_phone_sets(tmp_path):
    lang = prepare_lang(_dict_dir(tmp_path), tmp_path / "lang")
    phones = read_symbol_table(tmp_path / "lang/phones.txt")
    words = read_symbol_table(tmp_path / "lang/words.txt")
    assert phones["<eps>"] == 0 and words["<eps>"] == 0
    assert {"#0", "#1", "#2", "#3"} <= set(phones)        # doe/dough, ba prefix of bad/bat, + silence
    assert {"#0", "<s>", "</s>", "<unk>", "bat"} <= set(words)
    assert (tmp_path / "lang/phones/silence.txt").read_text().split() == ["SIL", "SPN", "NSN"]
    assert (tmp_path / "lang/oov.int").read_text().split() == [str(words["<unk>"])]
    assert sorted(lang.disambig_ids) == sorted(int(x) for x in (tmp_path / "lang/phones/disambig.int").read_text().split())
    again = load_lang(tmp_path / "lang")
    assert again.phones == lang.phones and again.words == lang.words


def test_lex_disambig_homophones_and_prefixes():
    lex, max_idx = add_lex_disambig([("doe", ["D", "OW"]), ("dough", ["D", "OW"]), ("ba", ["B", "AH"]),
                                     ("bat", ["B", "AH", "T"]), ("cat", ["K", "AH", "T"])])
    d = dict(lex)
    assert d["doe"][-1] != d["dough"][-1] and d["doe"][-1].startswith("#")
    assert d["ba"] == ["B", "AH", "#1"]
    assert d["cat"] == ["K", "AH", "T"] and d["bat"] == ["B", "AH", "T"]
    assert max_idx == 2


def test_topology_silence_has_five_states(tmp_path):
    lang = prepare_lang(_dict_dir(tmp_path), tmp_path / "lang")
    topo = khg.HmmTopology()
    topo.read((tmp_path / "lang/topo").read_text())
    p2n = topo.get_phone_to_num_pdf_classes()
    assert all(p2n[i] == 5 for i in lang.silence_ids)
    assert all(p2n[i] == 3 for i in lang.nonsilence_ids)


def test_lexicon_fst_accepts_word_sequences_with_optional_silence(tmp_path):
    prepare_lang(_dict_dir(tmp_path), tmp_path / "lang")
    ph = read_symbol_table(tmp_path / "lang/phones.txt")
    w = read_symbol_table(tmp_path / "lang/words.txt")
    L = kaldifst.StdVectorFst.read(str(tmp_path / "lang/L.fst"))
    seq = [ph[p] for p in ("B", "AH", "T", "K", "AH", "T")]
    assert _words_for_phones(L, seq) == [w["bat"], w["cat"]]
    with_sil = [ph["SIL"]] + seq[:3] + [ph["SIL"]] + seq[3:] + [ph["SIL"]]
    assert _words_for_phones(L, with_sil) == [w["bat"], w["cat"]]
    # a second silence is the word `!sil`, not a second optional silence
    assert _words_for_phones(L, [ph["SIL"], ph["SIL"]] + seq) == [w["!sil"], w["bat"], w["cat"]]
    assert _words_for_phones(L, [ph["B"], ph["T"]]) is None             # not a word
    Ld = kaldifst.StdVectorFst.read(str(tmp_path / "lang/L_disambig.fst"))
    assert _words_for_phones(Ld, [ph["D"], ph["OW"], ph["#1"]]) in ([w["doe"]], [w["dough"]])


def test_bad_dict_is_rejected_with_the_word(tmp_path):
    with pytest.raises(ValueError, match="word 'zap'"):
        prepare_lang(_dict_dir(tmp_path, LEXICON + "zap Z AE P\n"), tmp_path / "lang")
