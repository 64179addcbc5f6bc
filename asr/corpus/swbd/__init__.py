"""Switchboard-1 + Fisher training data and Hub5'00 (eval2000) test data, via lhotse's recipes (a package).

Modules, one job each: `layout` (corpora.yaml and the LDC layouts), `audio` (SPHERE reading),
`supervisions` (Kaldi ids, text normalisation, stm segments), `recipes` (lhotse's recipes on
the checked layouts), `outputs` (manifests, data dirs, dict, dev split), `prepare` (the whole
stage and its dry-run plan), `__main__` (the command line).

Inputs (paths in `egs/swbd/conf/corpora.yaml`, see `load_corpora`):

- Switchboard-1 Release 2 (LDC97S62): `*.sph` anywhere below `swbd.audio`; the ISIP MS-98
  word alignments (`swb_ms98_transcriptions`, `*trans.text`) below `swbd.transcripts`.
- Fisher English (optional): audio dirs LDC2004S13/LDC2005S13 (`<partition>/audio/<nnn>/fe_03_*.sph`),
  transcript dirs LDC2004T19/LDC2005T19 (`[fe_03_p?_tran/]data/trans/<nnn>/*.txt` and
  `doc/*_calldata.tbl`).
- Hub5'00: LDC2002S09 (`[hub5e_00/]english/*.sph`) and LDC2002T43
  (`[2000_hub5_eng_eval_tr/]reference/{english/*.txt, hub5e00.english.000405.stm, en20000405_hub5.glm}`).

lhotse's `prepare_switchboard`, `prepare_fisher_english` and `prepare_eval2000` read the audio
headers and parse the transcripts; this module checks the layouts first (clear errors), links
them into the layout lhotse expects, then renames everything the Kaldi way (conversation-side
speakers `sw02001-A`, utterances `sw02001-A_000098-001156`), normalises the text
(`asr.corpus.swbd_text`) and writes the manifests and Kaldi data dirs:

    data/manifests/swbd_{recordings,supervisions,cuts}_{train,dev,eval2000}.jsonl.gz
    data/train      Switchboard (less the dev conversations) + Fisher
    data/dev        the first `dev_conversations` Switchboard conversations (if > 0)
    data/eval2000   segmented as the stm (the scoring reference), plus stm, glm,
                    reco2file_and_channel; sw_* / en_* ids are the Switchboard / CallHome halves
    data/local/dict the lexicon (asr.corpus.lexicon, CMUdict + the noise words)

Reading SPHERE: lhotse reads `.sph` with the `sph2pipe` program when it is on PATH (needed for
shorten-compressed files, as LDC ships Switchboard and Hub5'00). Without it, uncompressed
SPHERE (PCM or mu-law) is read by libsndfile: `sph_audio_backend()` picks, and the recipe
exports `LHOTSE_AUDIO_BACKEND` so every later stage reads the audio the same way.

CLI: `python -m asr.corpus.swbd --config conf/corpora.yaml --data data [--nj 8] [--dry-run]`.
wav.scp uses Kaldi's `sph2pipe -f wav -p -c N file.sph |` when sph2pipe is installed, else
`python egs/swbd/local/sph2wav.py -c N file.sph |`.
"""

from asr.corpus.swbd import audio  # noqa: F401  (swbd.audio.sph2pipe_available is the one switch)
from asr.corpus.swbd.layout import (Corpora, GLM_NAME, Layout, MANIFEST_PREFIX, STM_NAME, load_corpora, resolve_layout,
                                    transcript_problems)  # noqa: F401
from asr.corpus.swbd.audio import (check_sph_readable, sph2pipe_available, sph_audio_backend, sph_coding)  # noqa: F401
from asr.corpus.swbd.supervisions import fix_stm, kaldi_ids, renormalize, stm_supervisions  # noqa: F401
from asr.corpus.swbd.recipes import (prepare_eval2000_lhotse, prepare_fisher_lhotse, prepare_swbd_lhotse)  # noqa: F401
from asr.corpus.swbd.outputs import (SPH2WAV, drop_all_oov, sph_wav_entry, split_dev, write_dict,
                                     write_eval2000_extras, write_kaldi_dir, write_manifests)  # noqa: F401
from asr.corpus.swbd.prepare import plan, prepare  # noqa: F401
