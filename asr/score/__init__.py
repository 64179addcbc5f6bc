"""WER scoring with sclite's conventions, Hub5'00-style filtering, sclite/icefall report files.

    python -m asr.score --ref data/test/text --hyp DIR/hyp.txt --dir DIR/scoring
    python -m asr.score --ref data/eval2000/stm --glm data/eval2000/glm \
        --segments data/eval2000/segments --subsets sw_ en_ \
        --hyp DIR/hyp_lmwt*_wip*.txt --dir DIR/scoring

Conventions (sclite's):
- Alignment: sclite's own dynamic programme and tie breaking (asr/score/align.py), so the
  per-utterance C/S/D/I counts are those of `sclite -F -D` (tested against the real binary).
  Costs: insertion 3, deletion 3, substitution 4.
- Reference tokens in parentheses `(uh)`, `(%hesitation)`, `(th-)` are optionally deletable
  (sclite -D): deleting one costs 2 and counts as correct; they count in `# Wrd`; replaced by
  another word they are a substitution.
- Alternatives `{ a / b c / @ }` (in the STM or produced by the GLM) match any one branch;
  `@` is the empty branch (not counted).
- A fragment `th-` (or `-ing`) matches a word that starts (ends) with it (sclite -F).
- Hub5 filtering: GLM word mapping on reference and hypothesis; tokens `[...]` (noise,
  laughter), `<...>` (`<unk>`, asides) and `!sil` are dropped from both; `%hesitation` is
  dropped from the hypothesis (csrfilt -dh) and optionally deletable in the reference.
  A GLM rule with alternatives is applied to the reference only; a hypothesis keeps its words
  (they are one of the branches) — rules with a single output apply to both.
- Missing utterance: an utterance of the reference with no hypothesis line is scored as all
  deletions (what sclite does for a reference segment with no hypothesis words in stm/ctm mode)
  and logged as a WARNING naming it; `--require-all` turns that into an error. A hypothesis
  utterance that is not in the reference is an error.

Hypotheses are Kaldi text (`utt words...`) or CTM (`*.ctm`: `utt-or-file channel start dur word [conf]`).
`--scorer sclite` runs NIST's sclite binary itself (hubscr-style `-F -D`, STM+CTM or trn) instead.

Several `--hyp` files are several settings (e.g. `hyp_lmwt10_wip0.5.txt`): each is scored into
`DIR/<setting>/` and the best (lowest WER over all utterances) is reported in `DIR/wer.json`,
`DIR/best_wer` and the icefall-style `DIR/wer-summary`.
"""

from asr.config_cli import parse_with_config
from asr.score.align import Counts, align, align_network, build_network, count_alignment, words_match
from asr.score.glm import (HESITATION, GlmRule, Slot, is_dropped, normalize_hypothesis, parse_glm, parse_reference,
                           read_glm, tokenize)
from asr.score.inputs import RefUtt, load_references, read_hyp, read_stm, stm_hypotheses
from asr.score.result import SettingResult, UttResult, parse_setting, score_files, score_setting, setting_name
from asr.score.cli import main

__all__ = ["Counts", "GlmRule", "HESITATION", "RefUtt", "SettingResult", "Slot", "UttResult", "align",
           "align_network", "build_network", "count_alignment", "is_dropped", "load_references", "main",
           "normalize_hypothesis", "parse_glm", "parse_reference", "parse_setting", "parse_with_config", "read_glm",
           "read_hyp", "read_stm", "score_files", "score_setting", "setting_name", "stm_hypotheses", "tokenize",
           "words_match"]
