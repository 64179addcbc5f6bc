"""Corpora: the embedded synthetic telephone corpus, lexicons, Kaldi data dirs and validation.

- `asr.corpus.synth`: deterministic eSpeak NG telephone-style corpus (`python -m asr.corpus.synth`).
- `asr.corpus.lexicon`: Kaldi dict dir from CMUdict (`python -m asr.corpus.lexicon`).
- `asr.corpus.datadir`: Kaldi data dirs from lhotse manifests, reading and validation
  (`python -m asr.corpus.datadir {write,validate}`).
"""
