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


def _padded_slice(x: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Frames [start, stop) of `(C, T, D)` with edge frames replicated outside [0, T)."""
    idx = torch.arange(start, stop).clamp_(0, x.shape[1] - 1)
    return x.index_select(1, idx)


@torch.inference_mode()
def log_likelihoods(model: torch.nn.Module, feats: np.ndarray | torch.Tensor, log_priors: np.ndarray | None,
                    chunk_frames: int = 0, batch_chunks: int = 8) -> np.ndarray:
    """Pseudo log-likelihoods `(frames, num_pdfs)` float32 of one utterance `(3, frames, bins)`.

    `log_softmax(logits) - log_priors` (no prior subtraction if `log_priors` is None).
    `chunk_frames` > 0 runs the network on chunks of that many output frames, `batch_chunks`
    chunks per forward call (memory bounded by chunk size, not utterance length); 0 runs the
    whole utterance at once. Both give the same numbers: the model is time-unpadded.
    """
    param = next(model.parameters())
    x = torch.as_tensor(feats, dtype=param.dtype)
    if x.dim() != 3:
        raise ValueError(f"expected features (channels, frames, bins), got {tuple(x.shape)}")
    left, right = (int(c) for c in model.context)
    n = x.shape[1]
    if chunk_frames <= 0 or chunk_frames > n:
        chunk_frames = n
    # Full chunks go in batches of `batch_chunks`; a shorter last chunk runs on its own. Frames
    # outside the utterance are the edge frames replicated, as for the whole utterance.
    full = list(range(0, n - chunk_frames + 1, chunk_frames))
    groups = [(full[b : b + batch_chunks], chunk_frames) for b in range(0, len(full), batch_chunks)]
    tail = len(full) * chunk_frames
    if tail < n:
        groups.append(([tail], n - tail))
    outs = []
    for group, size in groups:
        batch = torch.stack([_padded_slice(x, s - left, s + size + right) for s in group]).to(param.device)
        logp = torch.log_softmax(model(batch).float(), dim=-1).cpu()  # (len(group), size, num_pdfs)
        outs.extend(logp.unbind(0))
    out = torch.cat(outs).double().numpy()
    if log_priors is not None:
        out = out - log_priors[None, :]
    return np.ascontiguousarray(out, dtype=np.float32)


