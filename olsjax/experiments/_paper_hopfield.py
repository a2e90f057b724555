"""Experiment 4 of ``paper``: Hopfield capacity of the three update rules (T10).

``N`` random ±1 patterns in ``d`` dimensions; each cue is a stored pattern
with exactly ``round(FLIP·d)`` of its signs flipped; a retrieval succeeds when
the sign of the state after the update(s) equals the stored pattern in every
unit. Rules (``olsjax.hopfield_retrieve``): classical quadratic energy
``ξ ← sign(XᵀXξ)``, dense associative memory ``F(z) = z^a`` (synchronous
Krotov–Hopfield update), modern exponential energy ``ξ ← Xᵀ softmax(βXξ)``.
The capacity is the ``N`` at which the success rate crosses one half
(log-linear interpolation between grid points), against the literature:
about ``0.138·d`` (classical, a small fraction of errors allowed),
``d/(2 ln d)`` (classical, error-free), ``d^{a−1}/(2(2a−3)!! ln d)``
(polynomial, error-free) and ``2^{d/2}`` (exponential).
"""

from __future__ import annotations

import math

import numpy as np

from .. import hopfield_retrieve

#: Fraction of signs flipped in every cue.
FLIP = 0.1
#: Degree ``a`` of the polynomial energy.
DEGREE = 3
#: Inverse temperature of the exponential energy (patterns have norm √d: scores ``x_μᵀξ`` are O(d)).
BETA = 1.0
#: Synchronous updates of the binary rules (the exponential rule retrieves in one, Ramsauer et al.).
STEPS = {"quadratic": 3, "polynomial": 3, "exponential": 1}
RULES = tuple(STEPS)


def success(rng: np.random.Generator, d: int, n: int, rule: str, cues: int) -> float:
    """Fraction of ``cues`` corrupted copies of stored patterns that ``rule`` restores exactly."""
    patterns = rng.choice(np.array([-1.0, 1.0]), size=(n, d))
    which = rng.integers(0, n, cues)
    cue = patterns[which].copy()
    flips = np.argsort(rng.random((cues, d)), axis=1)[:, : round(FLIP * d)]
    np.put_along_axis(cue, flips, -np.take_along_axis(cue, flips, axis=1), axis=1)
    out = np.asarray(hopfield_retrieve(patterns, cue, energy=rule, degree=DEGREE, beta=BETA, steps=STEPS[rule]))
    return float(np.mean(np.all(np.sign(out) == patterns[which], axis=1)))


def capacity(ns: list[int], rates: list[float]) -> float | None:
    """``N`` where the success rate first falls below 1/2 (log-interpolated); ``None`` if it never does."""
    for (n0, r0), (n1, r1) in zip(zip(ns, rates), zip(ns[1:], rates[1:])):
        if r0 >= 0.5 > r1:
            t = (r0 - 0.5) / (r0 - r1)
            return float(math.exp(math.log(n0) + t * (math.log(n1) - math.log(n0))))
    return None if rates[-1] >= 0.5 else float(ns[0])


def theory(d: int) -> dict[str, float]:
    """The literature's capacities at width ``d`` (THEOREMS.md addendum, T10)."""
    double_factorial = math.prod(range(2 * DEGREE - 3, 0, -2))
    return {"classical 0.138·d": 0.138 * d, "classical error-free d/(2 ln d)": d / (2 * math.log(d)),
            f"polynomial a={DEGREE} error-free": d ** (DEGREE - 1) / (2 * double_factorial * math.log(d)),
            "exponential 2^(d/2)": 2.0 ** (d / 2)}


def run_rule(rng, d: int, rule: str, grid: np.ndarray, cues: int) -> dict:
    """Success rates along ``grid`` until two points in a row retrieve nothing (the rest would too)."""
    ns, rates = [], []
    for n in grid:
        ns.append(int(n))
        rates.append(success(rng, d, int(n), rule, cues))
        if len(rates) >= 2 and rates[-1] == rates[-2] == 0.0:
            break
    return {"rule": rule, "d": d, "n": ns, "success": rates, "capacity": capacity(ns, rates),
            "largest_n_tested": ns[-1]}


def run(*, quick: bool, seed: int, progress) -> dict:
    """Experiment 4: success rate vs ``N/d`` per rule and width; capacities against theory."""
    del progress
    dims, cues, ratio, top = ((32,), 64, 4.0, 64) if quick else ((16, 32, 64), 200, 2**0.5, 256)
    rng = np.random.default_rng([seed, 4])
    curves = []
    for d in dims:
        grid = np.unique(np.round(2 * ratio ** np.arange(0, math.log(top * d / 2, ratio) + 1e-9)).astype(int))
        curves += [run_rule(rng, d, rule, grid, cues) for rule in RULES]
    poly = [(c["d"], c["capacity"]) for c in curves if c["rule"] == "polynomial" and c["capacity"]]
    slope = (float(np.polyfit(np.log([d for d, _ in poly]), np.log([c for _, c in poly]), 1)[0])
             if len(poly) >= 2 else None)
    return {
        "settings": {"flip_fraction": FLIP, "degree": DEGREE, "beta": BETA, "steps": STEPS,
                     "cues_per_point": cues, "dims": list(dims), "largest_n_over_d": top,
                     "success": "sign of the final state equals the stored pattern in every unit",
                     "capacity": "N where the success rate crosses 1/2"},
        "curves": curves,
        "theory": [{"d": d, **theory(d)} for d in dims],
        "polynomial_capacity_exponent": slope,
    }
