"""Acoustic-model side of decoding: checkpoint loading, log priors, chunked pseudo log-likelihoods."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def load_model(model_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """`final.pt` -> (model in eval mode, checkpoint dict without the state dict)."""
    from asr.models import create_model

    path = Path(model_dir) / "final.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no trained model (run the training stage first)")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    for key in ("model_name", "model_kwargs", "state_dict", "num_pdfs"):
        if key not in ckpt:
            raise ValueError(f"{path}: checkpoint lacks '{key}'")
    model = create_model(ckpt["model_name"], **ckpt["model_kwargs"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval().to(device)
    meta = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model, meta


def read_log_priors(path: str | Path, num_pdfs: int, floor: float = 1e-8) -> np.ndarray:
    """Kaldi text vector of pdf frame counts -> log priors `(num_pdfs,)` float32.

    Priors are the counts normalised to sum 1, floored at `floor` (pdfs never seen in training
    would otherwise get an infinite boost).
    """
    text = Path(path).read_text().replace("[", " ").replace("]", " ").split()
    counts = np.asarray([float(x) for x in text], dtype=np.float64)
    if counts.shape[0] != num_pdfs:
        raise ValueError(f"{path}: {counts.shape[0]} pdf counts, but the model has {num_pdfs} outputs")
    if counts.sum() <= 0:
        raise ValueError(f"{path}: pdf counts sum to {counts.sum()}")
    priors = np.maximum(counts / counts.sum(), floor)
    return np.log(priors).astype(np.float32)


def inference_model(model: torch.nn.Module) -> torch.nn.Module:
    """The network as decoding runs it: a copy in eval mode with every BatchNorm folded into the
    convolution before it (asr.nn.fold_batchnorm). Same outputs within float rounding."""
    from asr.nn import fold_batchnorm

    return fold_batchnorm(model)


def pack_utterances(xs: list[torch.Tensor], left: int, right: int) -> tuple[torch.Tensor, list[int]]:
    """Utterances `(C, n_u, D)` laid end to end, each with `left`/`right` context frames of its
    own (its edge frames repeated): `(C, sum(n_u + left + right), D)`, and where each one's output
    frames start among the packed sequence's outputs. Output frame `o` of the packed sequence sees
    input frames `o .. o + left + right`, so utterance u's outputs are `[start_u, start_u + n_u)`
    and depend on its own frames only; the `left + right` outputs between two utterances are
    dropped."""
    parts, starts, pos = [], [], 0
    for x in xs:
        n = x.shape[1]
        parts.append(x.index_select(1, torch.arange(-left, n + right).clamp_(0, n - 1)))
        starts.append(pos)
        pos += n + left + right
    return torch.cat(parts, dim=1), starts


@torch.inference_mode()
def log_likelihoods_many(model: torch.nn.Module, feats: list[np.ndarray | torch.Tensor],
                         log_priors: np.ndarray | None, chunk_frames: int = 512,
                         batch_frames: int = 1024) -> list[np.ndarray]:
    """Pseudo log-likelihoods `(frames, num_pdfs)` float32 of several utterances `(3, frames, bins)`.

    `log_softmax(logits) - log_priors` (no prior subtraction if `log_priors` is None). The
    utterances are packed end to end, each with the model's `(left, right)` context of its own
    edge frames (`pack_utterances`), and the packed sequence is cut into chunks of `chunk_frames`
    output frames (0: one chunk) with their context, `batch_frames // chunk_frames` chunks per
    network call. Every call has the same input shape (the last one is filled up with copies of
    the last chunk), so the convolution library's per-shape set-up is paid once and an
    utterance's numbers do not depend on which utterances share its block; because the model is
    time-unpadded they equal those of each utterance run on its own (float rounding aside).
    """
    param = next(model.parameters())
    xs = [torch.as_tensor(f, dtype=param.dtype) for f in feats]
    for i, x in enumerate(xs):
        if x.dim() != 3:
            raise ValueError(f"utterance {i}: expected features (channels, frames, bins), got {tuple(x.shape)}")
        if x.shape[1] == 0:
            raise ValueError(f"utterance {i}: no frames")
    if not xs:
        return []
    left, right = (int(c) for c in model.context)
    packed, starts = pack_utterances(xs, left, right)
    n_out = packed.shape[1] - left - right
    chunk = n_out if chunk_frames <= 0 else min(chunk_frames, n_out)
    n_chunks = -(-n_out // chunk)
    pad = n_chunks * chunk - n_out  # the last chunk runs full length on repeated last frames
    if pad:
        packed = torch.cat([packed, packed[:, -1:].expand(-1, pad, -1)], dim=1)
    windows = packed.unfold(1, chunk + left + right, chunk)  # (C, chunks, D, chunk + context)
    per_call = min(max(1, batch_frames // chunk), n_chunks)
    priors = None if log_priors is None else torch.as_tensor(log_priors, dtype=torch.float32)
    outs = []
    for b in range(0, n_chunks, per_call):
        idx = torch.arange(b, b + per_call).clamp_(max=n_chunks - 1)  # the last call too: one shape
        x = windows.index_select(1, idx).permute(1, 0, 3, 2).contiguous().to(param.device)
        logp = torch.log_softmax(model(x).float(), dim=-1).cpu()[:n_chunks - b]  # (chunks, chunk, num_pdfs)
        if priors is not None:
            logp -= priors
        outs.append(logp.reshape(-1, logp.shape[-1]))
    out = torch.cat(outs).numpy()
    return [out[s:s + x.shape[1]].copy() for s, x in zip(starts, xs)]


def log_likelihoods(model: torch.nn.Module, feats: np.ndarray | torch.Tensor, log_priors: np.ndarray | None,
                    chunk_frames: int = 0, batch_frames: int = 1024) -> np.ndarray:
    """`log_likelihoods_many` of one utterance `(3, frames, bins)` -> `(frames, num_pdfs)` float32."""
    return log_likelihoods_many(model, [feats], log_priors, chunk_frames, batch_frames)[0]
