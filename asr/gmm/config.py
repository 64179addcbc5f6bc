"""GMM training options (GmmConfig, StageConfig from gmm.yaml) and the names they imply.

The rounds are `mono`, `tri1` ... `tri<N>` (one per `tri:` entry); the final alignment dir is
`<exp>/<last round>_ali`. `python -m asr.gmm final-dir --config gmm.yaml --exp exp` prints it
for the recipes, so that no round name is written in shell.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from asr.config import load_config


@dataclass
class StageConfig:
    """One training round (mono, tri1, tri2, ...)."""

    num_iters: int = 10
    realign_iters: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 6, 8])
    num_gauss: int = 1000          # total Gaussians at the end of the round
    num_leaves: int = 0            # triphone rounds: target number of tree leaves
    min_leaf_count: float = 100.0  # triphone rounds: minimum frames per leaf
    max_iter_inc: int = 0          # split Gaussians until this iteration (0: num_iters - 2)
    beam: float = 0.0              # alignment beam for this round (0: the global `beam`)
    retry_beam: float = 0.0
    subset: int = 0                # mono only: train on the N shortest utterances, then align all
                                   # (Kaldi's subset_data_dir.sh --shortest + align_si.sh); 0: all
    feat_type: str = "delta"       # triphone rounds: delta | lda_mllt (Kaldi train_lda_mllt.sh) | sat
                                   # (train_sat.sh: the previous round's final.mat + per-speaker fMLLR)
    lda_dim: int = 40              # lda_mllt: output dimension (capped at the spliced dimension)
    splice_context: int = 3        # lda_mllt: static features spliced +-N frames before the LDA
    mllt_iters: list[int] = field(default_factory=lambda: [2, 4, 6, 12])   # lda_mllt: MLLT updates
    fmllr_iters: list[int] = field(default_factory=lambda: [2, 4, 6, 12])  # sat: fMLLR re-estimation


@dataclass
class GmmConfig:
    mono: StageConfig = field(default_factory=lambda: StageConfig(
        num_iters=12, num_gauss=600, realign_iters=[1, 2, 3, 4, 5, 6, 8, 10], beam=40.0, retry_beam=200.0))
    tri: list[StageConfig] = field(default_factory=lambda: [
        StageConfig(num_iters=8, num_gauss=3000, num_leaves=500, realign_iters=[2, 4, 6]),
        StageConfig(num_iters=8, num_gauss=6000, num_leaves=1000, realign_iters=[2, 4, 6]),
    ])
    beam: float = 10.0
    retry_beam: float = 40.0
    acoustic_scale: float = 0.1
    self_loop_scale: float = 0.1
    transition_scale: float = 1.0
    min_variance: float = 0.001
    min_gaussian_occupancy: float = 10.0
    power: float = 0.2
    perturb_factor: float = 0.01
    seed: int = 0
    nj: int = 2
    cmd: str = "local"        # where alignment jobs run (asr.executor: local, dask://HOST:PORT, slurm|pbs|sge)
    import_ali: str = ""      # Kaldi pdf alignments (ark/scp) to import instead of training
    import_num_pdfs: int = 0  # their number of pdfs (range check); 0: unchecked

    @classmethod
    def from_yaml(cls, path: str | Path | None) -> "GmmConfig":
        """gmm.yaml (GmmConfig fields; `mono:` a round, `tri:` a list of rounds); defaults when None."""
        cfg = load_config(cls, path)
        prev = "delta"
        for i, st in enumerate(cfg.tri, 1):
            if st.feat_type not in ("delta", "lda_mllt", "sat"):
                raise ValueError(f"{path}: tri{i}: feat_type {st.feat_type!r} is not delta, lda_mllt or sat")
            if st.feat_type == "sat" and prev == "delta":
                raise ValueError(f"{path}: tri{i}: a sat round needs an lda_mllt (or sat) round before it")
            if st.feat_type == "delta" and prev != "delta":
                raise ValueError(f"{path}: tri{i}: a delta round cannot follow an {prev} round")
            prev = st.feat_type
        return cfg

    @property
    def round_names(self) -> list[str]:
        """`mono`, `tri1`, ..., one per round, in training order."""
        return ["mono"] + [f"tri{i}" for i in range(1, len(self.tri) + 1)]


def final_model_dir(cfg: GmmConfig, exp_dir: str | Path) -> Path:
    """The last round's model dir (`<exp>/tri2` for two triphone rounds)."""
    return Path(exp_dir) / cfg.round_names[-1]


def final_ali_dir(cfg: GmmConfig, exp_dir: str | Path) -> Path:
    """The final alignment dir (`<exp>/<last round>_ali`), also for imported alignments."""
    return Path(exp_dir) / f"{cfg.round_names[-1]}_ali"
