"""Feature-space transforms of the GMM stage, in numpy (the `kaldi_hmm_gmm` bindings have no LDA,
MLLT or fMLLR classes): frame splicing, LDA (Kaldi acc-lda + est-lda), MLLT / semi-tied
covariance (gmm-acc-mllt + est-mllt, Gales 1999), per-speaker fMLLR (gmm-est-fmllr), written from
the formulas, plus their Kaldi-matrix files (`final.mat`, `trans.{ark,scp}`).

Shapes: features are `(frames, dim)`; an LDA or MLLT matrix is `(out_dim, in_dim)` and applies as
`X @ M.T`; an fMLLR transform is `W = [A | b]`, `(dim, dim + 1)`, applying as `X @ A.T + b`.
Statistics are float64; a NaN/inf or a singular matrix raises `TransformError` naming what.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from asr.utils import atomic_path


class TransformError(ValueError):
    """A transform could not be estimated (singular statistics, NaN/inf)."""


def _check(M: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(M)):
        raise TransformError(f"{what}: the transform has NaN/inf entries")
    return M


def splice(X: np.ndarray, context: int) -> np.ndarray:
    """(T, D) -> (T, D * (2 * context + 1)): frames t-context..t+context side by side, edge frames
    repeated (Kaldi splice-feats)."""
    T = X.shape[0]
    if context <= 0 or T == 0:
        return np.asarray(X)
    idx = np.clip(np.arange(T)[:, None] + np.arange(-context, context + 1)[None], 0, T - 1)
    return X[idx].reshape(T, -1)


# ---------------------------------------------------------------------------------------- LDA
class LdaStats:
    """Per-class counts `(C,)`, sums `(C, D)` and the total scatter `(D, D)` (Kaldi acc-lda)."""

    def __init__(self, num_classes: int, dim: int):
        self.count = np.zeros(num_classes)
        self.sum = np.zeros((num_classes, dim))
        self.scatter = np.zeros((dim, dim))

    def accumulate(self, X: np.ndarray, classes: np.ndarray, weights: np.ndarray | None = None) -> None:
        """X `(T, D)`, classes `(T,)` ints in [0, C), weights `(T,)` (default 1)."""
        X = np.asarray(X, np.float64)
        w = np.ones(len(X)) if weights is None else np.asarray(weights, np.float64)
        np.add.at(self.count, classes, w)
        np.add.at(self.sum, classes, X * w[:, None])
        self.scatter += (X * w[:, None]).T @ X


def estimate_lda(st: LdaStats, dim: int, what: str = "LDA") -> tuple[np.ndarray, np.ndarray]:
    """The LDA projection `(dim, D)` and its eigenvalues `(dim,)`, largest first.

    Within-class covariance W and between-class covariance B = total - W; with W = L L^T, the
    eigenvectors U of L^-1 B L^-T give M = U^T L^-1: the projected within-class covariance is the
    unit matrix and the between-class one is diagonal (the eigenvalues), as Kaldi's est-lda.
    `dim` is capped at D."""
    n = st.count.sum()
    if n <= 0:
        raise TransformError(f"{what}: no frames")
    D = st.sum.shape[1]
    dim = min(dim, D)
    mean = st.sum.sum(0) / n
    total = st.scatter / n - np.outer(mean, mean)
    used = st.count > 0
    cm = st.sum[used] / st.count[used, None]
    between = (cm * st.count[used, None]).T @ cm / n - np.outer(mean, mean)
    within = total - between
    _check(within, what)
    try:
        L = np.linalg.cholesky(within)
    except np.linalg.LinAlgError as e:
        raise TransformError(f"{what}: the within-class covariance is singular ({e})") from None
    Linv = np.linalg.inv(L)
    S, U = np.linalg.eigh(Linv @ between @ Linv.T)
    order = np.argsort(S)[::-1][:dim]
    return _check(U[:, order].T @ Linv, what), S[order]


# --------------------------------------------------------------------- per-Gaussian posteriors
def gauss_posteriors(am, pdf_ali: np.ndarray, X: np.ndarray):
    """Yield (frame indices `(n,)`, pdf, posteriors `(n, G)`) per aligned pdf: the component
    posteriors within the pdf of the (Viterbi) alignment `pdf_ali` `(T,)` for X `(T, D)`."""
    order = np.argsort(pdf_ali, kind="stable")
    bounds = np.searchsorted(pdf_ali[order], np.arange(am.num_pdfs + 1))
    for p in range(am.num_pdfs):
        idx = order[bounds[p]:bounds[p + 1]]
        if len(idx):
            ll = np.asarray(am.get_pdf(p).log_likelihoods_matrix(np.ascontiguousarray(X[idx], np.float32)),
                            np.float64)
            ll -= ll.max(1, keepdims=True)
            post = np.exp(ll)
            yield idx, p, post / post.sum(1, keepdims=True)


def _gmm_params(am, p: int) -> tuple[np.ndarray, np.ndarray]:
    g = am.get_pdf(p)
    return np.asarray(g.means, np.float64), np.asarray(g.inv_vars, np.float64)


# ---------------------------------------------------------------------------------------- MLLT
def mllt_stats(am, pdf_ali: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float]:
    """G_i = sum_t,m gamma_tm (x_t - mu_m)(x_t - mu_m)^T / var_mi, `(D, D, D)`, and beta (the
    frame count), for X `(T, D)` aligned to pdfs `pdf_ali` `(T,)` (Kaldi gmm-acc-mllt)."""
    D = X.shape[1]
    G = np.zeros((D, D, D))
    X = np.asarray(X, np.float64)
    for idx, p, post in gauss_posteriors(am, pdf_ali, X):
        means, ivars = _gmm_params(am, p)
        Xp = X[idx]
        for m in range(post.shape[1]):
            Y = Xp - means[m]
            S = (Y * post[:, m:m + 1]).T @ Y
            G += ivars[m][:, None, None] * S[None]
    return G, float(len(X))


def mllt_auxf(A: np.ndarray, G: np.ndarray, beta: float) -> float:
    """beta log|det A| - 1/2 sum_i a_i G_i a_i^T (the part of the likelihood A changes)."""
    return float(beta * np.linalg.slogdet(A)[1] - 0.5 * np.einsum("ij,ijk,ik->", A, G, A))


def estimate_mllt(G: np.ndarray, beta: float, iters: int = 10, A: np.ndarray | None = None,
                  what: str = "MLLT") -> np.ndarray:
    """The semi-tied transform A `(D, D)` from `mllt_stats`, by Gales' row-by-row update
    a_i = c_i G_i^-1 sqrt(beta / (c_i G_i^-1 c_i^T)) with c_i the cofactor row; starts at A
    (default the identity). Each row update increases `mllt_auxf`."""
    D = G.shape[0]
    A = np.eye(D) if A is None else np.array(A, np.float64)
    _check(G, what)
    try:
        Ginv = np.linalg.inv(G)
    except np.linalg.LinAlgError:
        raise TransformError(f"{what}: singular statistics G_i") from None
    for _ in range(iters):
        for i in range(D):
            det = np.linalg.det(A)
            if not np.isfinite(det) or abs(det) < 1e-300:
                raise TransformError(f"{what}: the transform became singular")
            c = det * np.linalg.inv(A)[:, i]          # cofactor row i
            cg = c @ Ginv[i]
            A[i] = cg * np.sqrt(beta / (cg @ c))
    return _check(A, what)


# --------------------------------------------------------------------------------------- fMLLR
class FmllrStats:
    """fMLLR statistics of one speaker (Kaldi FmllrDiagGmmAccs): beta, K `(D, D+1)`,
    G_i `(D, D+1, D+1)` with xi = [x; 1]."""

    def __init__(self, dim: int):
        self.beta = 0.0
        self.K = np.zeros((dim, dim + 1))
        self.G = np.zeros((dim, dim + 1, dim + 1))

    def accumulate(self, am, pdf_ali: np.ndarray, X: np.ndarray, weights: np.ndarray | None = None,
                   W: np.ndarray | None = None) -> None:
        """Add X `(T, D)` (untransformed features), aligned to pdfs `pdf_ali` `(T,)`; the Gaussian
        posteriors come from the features through the current transform `W` (default: X itself)."""
        X = np.asarray(X, np.float64)
        T, D = X.shape
        w = np.ones(T) if weights is None else np.asarray(weights, np.float64)
        iv_t = np.zeros((T, D))   # sum_m gamma_tm / var_mi
        miv_t = np.zeros((T, D))  # sum_m gamma_tm mu_mi / var_mi
        for idx, p, post in gauss_posteriors(am, pdf_ali, X if W is None else apply_fmllr(W, X)):
            means, ivars = _gmm_params(am, p)
            iv_t[idx] = post @ ivars
            miv_t[idx] = post @ (means * ivars)
        xi = np.hstack([X, np.ones((T, 1))])
        iv_t *= w[:, None]
        miv_t *= w[:, None]
        self.beta += float(w.sum())
        self.K += miv_t.T @ xi
        outer = (xi[:, :, None] * xi[:, None, :]).reshape(T, -1)
        self.G += (iv_t.T @ outer).reshape(D, D + 1, D + 1)


def fmllr_auxf(W: np.ndarray, st: FmllrStats) -> float:
    """beta log|det A| + sum_i (w_i k_i - 1/2 w_i G_i w_i^T), W = [A | b]: the fMLLR objective."""
    A = W[:, :-1]
    return float(st.beta * np.linalg.slogdet(A)[1] + np.sum(W * st.K)
                 - 0.5 * np.einsum("ij,ijk,ik->", W, st.G, W))


def estimate_fmllr(st: FmllrStats, iters: int = 10, W: np.ndarray | None = None,
                   what: str = "fMLLR", min_count: float = 0.0) -> np.ndarray:
    """Row-by-row fMLLR update (Gales 1998): w_i = (alpha p_i + k_i) G_i^-1 with p_i = [cofactor
    row of A, 0] and alpha the root of e1 alpha^2 + e2 alpha - beta = 0 that maximises the row's
    auxiliary function. Returns W `(D, D+1)`; the identity transform when beta < min_count."""
    D = st.K.shape[0]
    W = np.hstack([np.eye(D), np.zeros((D, 1))]) if W is None else np.array(W, np.float64)
    if st.beta <= 0 or st.beta < min_count:
        return W
    _check(st.G, what)
    _check(st.K, what)
    try:
        Ginv = np.linalg.inv(st.G)
    except np.linalg.LinAlgError:
        raise TransformError(f"{what}: singular statistics G_i ({st.beta:g} frames)") from None
    beta = st.beta
    for _ in range(iters):
        for i in range(D):
            A = W[:, :-1]
            det = np.linalg.det(A)
            if not np.isfinite(det) or abs(det) < 1e-300:
                raise TransformError(f"{what}: the transform became singular")
            p = np.append(det * np.linalg.inv(A)[:, i], 0.0)
            k = st.K[i]
            e1 = p @ Ginv[i] @ p
            e2 = p @ Ginv[i] @ k
            disc = e2 * e2 + 4 * e1 * beta
            best = None
            for alpha in ((-e2 + np.sqrt(disc)) / (2 * e1), (-e2 - np.sqrt(disc)) / (2 * e1)):
                f = beta * np.log(abs(alpha * e1 + e2)) - 0.5 * alpha * alpha * e1
                if best is None or f > best[0]:
                    best = (f, alpha)
            W[i] = (best[1] * p + k) @ Ginv[i]
    return _check(W, what)


def apply_fmllr(W: np.ndarray, X: np.ndarray) -> np.ndarray:
    """X `(T, D)` -> X A^T + b (float32), W = [A | b] `(D, D+1)`."""
    return (np.asarray(X, np.float64) @ W[:, :-1].T + W[:, -1]).astype(np.float32)


# -------------------------------------------------------------------------------------- files
def write_matrix(path: str | Path, M: np.ndarray) -> None:
    """One Kaldi binary matrix (Kaldi's `final.mat`), written atomically."""
    import kaldiio

    _check(M, str(path))
    with atomic_path(path) as tmp:
        kaldiio.save_mat(str(tmp), np.asarray(M, np.float32))


def read_matrix(path: str | Path) -> np.ndarray:
    import kaldiio

    return np.asarray(kaldiio.load_mat(str(path)), np.float64)


def write_transforms(out_dir: str | Path, trans: dict[str, np.ndarray], name: str = "trans") -> None:
    """Per-speaker fMLLR transforms as `<name>.ark` + `<name>.scp` (Kaldi matrices), atomically."""
    import kaldiio

    out = Path(out_dir)
    ark, scp = out / f"{name}.ark", out / f"{name}.scp"
    for spk, W in trans.items():
        _check(W, f"fMLLR of speaker {spk}")
    with atomic_path(ark) as tark, atomic_path(scp) as tscp:
        with kaldiio.WriteHelper(f"ark,scp:{tark},{tscp}") as w:
            for spk in sorted(trans):
                w(spk, np.asarray(trans[spk], np.float32))
        tscp.write_text(tscp.read_text().replace(str(tark), str(ark.resolve())))


def read_transforms(out_dir: str | Path, name: str = "trans") -> dict[str, np.ndarray]:
    import kaldiio

    return {k: np.asarray(v, np.float64) for k, v in kaldiio.load_scp(str(Path(out_dir) / f"{name}.scp")).items()}
