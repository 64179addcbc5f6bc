"""WFST search over a decoding graph (HCLG): 1-best, n-best and lattice searchers, word penalties.

- `Searcher`: kaldi-decoder's FasterDecoder (beam, max-active), best path only (word ids,
  transition ids): the fast path, ~3x cheaper than a lattice search at the same beam.
- `NbestSearcher`: the N distinct best word sequences of kaldi-decoder's LatticeSimpleDecoder lattice.
- `LatticeSearcher`: one LatticeSimpleDecoder search -> a raw lattice (asr.lattice), costs kept apart.
- `add_word_penalty(fst, p)`: the graph with `p` added to every word arc (an insertion penalty).
Likelihood matrices are (frames, pdfs) log-likelihoods, scaled by the acoustic scale in the search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

def add_word_penalty(fst, penalty: float):
    """Copy of `fst` with `penalty` added to the cost of every arc with a word (output) label
    (edited as arrays: no Python loop over the arcs)."""
    from asr.fst_arrays import from_arrays, to_arrays

    a = to_arrays(fst)
    a.weight[a.olabel != 0] += np.float32(penalty)
    a.properties = None
    return from_arrays(a)


@dataclass
class SearchOptions:
    """Decoder options (Kaldi names and defaults of the nnet decode scripts). `max_active` and
    `min_active` bound the 1-best search; the lattice search prunes by `beam` only."""

    beam: float = 13.0
    max_active: int = 7000
    min_active: int = 200
    lattice_beam: float = 8.0


class Searcher:
    """HCLG best-path search with kaldi-decoder's FasterDecoder over per-pdf scores."""

    def __init__(self, hclg, trans_model, opts: SearchOptions):
        import kaldi_decoder as kd

        self.kd = kd
        o = kd.FasterDecoderOptions()
        o.beam, o.max_active, o.min_active = opts.beam, opts.max_active, opts.min_active
        self.hclg = hclg
        self.decoder = kd.FasterDecoder(hclg, o)
        # tid2pdf[t] for t = 1..num_transition_ids: column t-1 of the decodable matrix.
        tid2pdf = np.asarray(trans_model.transition_id_to_pdf_array(), dtype=np.int64)
        assert tid2pdf.shape[0] == trans_model.num_transition_ids + 1, "index 0 of tid2pdf is unused"
        self.tid2pdf = tid2pdf[1:]

    def decode(self, pdf_scores: np.ndarray, acoustic_scale: float, utt: str = "") -> tuple[list[int], list[int], bool]:
        """Best path of `(frames, num_pdfs)` log-likelihoods -> (word ids, transition ids, reached final)."""
        import kaldifst

        if pdf_scores.shape[0] == 0:
            return [], [], False
        mat = np.ascontiguousarray(acoustic_scale * pdf_scores[:, self.tid2pdf], dtype=np.float32)
        self.decoder.decode(self.kd.DecodableCtc(mat))
        ok = bool(self.decoder.reached_final())
        found, path = self.decoder.get_best_path()
        if not found:
            return [], [], False
        _, ali, words, _ = kaldifst.get_linear_symbol_sequence(path)
        return list(words), list(ali), ok


def lattice_decoder(hclg, opts: SearchOptions):
    """kaldi-decoder's LatticeSimpleDecoder over `hclg` with the beam and lattice beam of `opts`."""
    import kaldi_decoder as kd

    cfg = kd.LatticeSimpleDecoderConfig()
    cfg.beam, cfg.lattice_beam = opts.beam, opts.lattice_beam
    return kd.LatticeSimpleDecoder(hclg, cfg)


def raw_lattice(decoder, pdf_scores: np.ndarray, tid2pdf: np.ndarray, acoustic_scale: float):
    """Run a LatticeSimpleDecoder over `(frames, num_pdfs)` log-likelihoods, expanded to
    transition-id columns and scaled: (reached a final state, raw kaldifst.Lattice)."""
    import kaldi_decoder as kd

    mat = np.ascontiguousarray(acoustic_scale * pdf_scores[:, tid2pdf], dtype=np.float32)
    decoder.decode(kd.DecodableCtc(mat))
    return decoder.get_raw_lattice()


class NbestSearcher:
    """N distinct best word sequences from kaldi-decoder's LatticeSimpleDecoder lattice."""

    def __init__(self, hclg, tid2pdf: np.ndarray, opts: SearchOptions, n: int):
        self.decoder = lattice_decoder(hclg, opts)
        self.tid2pdf = tid2pdf
        self.n = n

    def decode(self, pdf_scores: np.ndarray, acoustic_scale: float) -> list[tuple[list[int], float]]:
        """`(frames, num_pdfs)` log-likelihoods -> [(word ids, total cost)], cheapest first."""
        if pdf_scores.shape[0] == 0:
            return []
        _, lat = raw_lattice(self.decoder, pdf_scores, self.tid2pdf, acoustic_scale)
        return self.from_lattice(lat)

    def from_lattice(self, lat) -> list[tuple[list[int], float]]:
        """N best distinct word sequences of a raw `kaldifst.Lattice` (costs as decoded)."""
        import kaldifst

        if lat.num_states == 0:
            return []
        acceptor = word_acceptor(lat)
        kaldifst.rmepsilon(acceptor)  # in place
        words = kaldifst.determinize(acceptor)
        out = []
        for path in kaldifst.lattice_to_nbest(words, n=self.n):
            _, _, word_ids, weight = kaldifst.get_linear_symbol_sequence(path)
            out.append((list(word_ids), float(weight.value)))
        return out


class LatticeSearcher:
    """One LatticeSimpleDecoder search per utterance -> raw lattice (acoustic costs unscaled)."""

    def __init__(self, hclg, tid2pdf: np.ndarray, opts: SearchOptions):
        self.decoder = lattice_decoder(hclg, opts)
        self.tid2pdf = tid2pdf

    def decode(self, pdf_scores: np.ndarray, acoustic_scale: float):
        """`(frames, num_pdfs)` log-likelihoods -> (asr.lattice.Lattice, reached a final state)."""
        from asr import lattice as L

        ok, lat = raw_lattice(self.decoder, pdf_scores, self.tid2pdf, acoustic_scale)
        self.last = lat  # the decoder's own lattice (scaled acoustics), e.g. for n-best lists
        return L.from_kaldifst(lat, acoustic_scale), bool(ok)


def word_acceptor(lat):
    """Kaldi Lattice (arcs tid:word, weights graph,acoustic) -> StdVectorFst word acceptor with
    the summed cost (read through the lattice's text form: the binding has no lattice arc iterator)."""
    import kaldifst

    def cost(field: str) -> float:
        return sum(float(c) for c in field.split(",")) if field else 0.0

    rows = [line.split() for line in lat.to_str().splitlines() if line.strip()]
    out = kaldifst.StdVectorFst()
    for _ in range(lat.num_states):
        out.add_state()
    out.start = lat.start
    for r in rows:
        if len(r) >= 4:  # src dst ilabel olabel [graph,acoustic]
            out.add_arc(int(r[0]), kaldifst.StdArc(int(r[3]), int(r[3]), cost(r[4] if len(r) > 4 else ""),
                                                   int(r[1])))
        else:  # final state [graph,acoustic]
            out.set_final(int(r[0]), cost(r[1] if len(r) > 1 else ""))
    return out
