"""Shared fixtures: a tiny synthesised telephone corpus (real eSpeak audio), made once per session."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    """A tiny corpus (3/1/1 speakers x 3/2/2 utterances; eSpeak NG and flite): dict, data dirs,
    manifests, wavs.

    Returns a dict of paths: root, corpus, manifests, dict_dir, train, dev, test.
    """
    from asr.corpus import datadir, lexicon, synth

    root = tmp_path_factory.mktemp("synth")
    cfg = synth.CorpusConfig(seed=11, speed_perturb={}, sets={
        "train": {"speakers": {"espeak": 2, "flite": 1}, "utts_per_speaker": 3},
        "dev": {"speakers": {"espeak": 1}, "utts_per_speaker": 2},
        "test": {"speakers": {"espeak": 1}, "utts_per_speaker": 2}})
    synth.generate(cfg, root / "corpus", root / "manifests", nj=1)
    lexicon.prepare_dict(root / "dict", word_lists=[root / "corpus" / "vocab.txt"])
    out = {"root": root, "corpus": root / "corpus", "manifests": root / "manifests",
           "dict_dir": root / "dict"}
    for set_name in cfg.set_names():
        recs, sups = datadir.load_manifests(root / "manifests", "synth", set_name)
        dd, _ = datadir.datadir_from_manifests(recs, sups)
        datadir.write_datadir(dd, root / set_name)
        out[set_name] = root / set_name
    return out


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tiny models on one thread (no sync spinning on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
