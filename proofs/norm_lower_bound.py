"""Certified LOWER bounds on spectral norms: ‖W‖₂ ≥ ‖W v‖/‖v‖ for any v ≠ 0.

Floats propose v (the top right-singular vector); the quotient is then evaluated in arb
balls from the exact binary64 entries, so the returned ball's lower end is a rigorous lower
bound. Used to show that the sufficient condition ‖W2‖‖W1‖ < 1 cannot hold on a checkpoint.
"""

from __future__ import annotations

import flint
import numpy as np

from promptlimits.proofs.interval import precision


def spectral_lower(W: np.ndarray, bits: int = 128) -> flint.arb:
    """A ball B with ‖W‖₂ ≥ every point of B's lower end (B encloses ‖W v‖/‖v‖ exactly)."""
    W = np.asarray(W, dtype=np.float64)
    _, _, vt = np.linalg.svd(W, full_matrices=False)
    v = vt[0]
    with precision(bits):
        Wm = flint.arb_mat(W.tolist())
        vm = flint.arb_mat([[float(x)] for x in v])
        w = Wm * vm
        num = sum((w[i, 0] * w[i, 0] for i in range(w.nrows())), flint.arb(0))
        den = sum((vm[i, 0] * vm[i, 0] for i in range(vm.nrows())), flint.arb(0))
        return (num / den).sqrt()
