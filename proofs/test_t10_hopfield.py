"""T10 — Hopfield energies and updates are attention steps (HN; the paper's closing section).

Claims (THEOREMS.md):

- Classical (quadratic) energy ``E(ξ) = −½ Σ_μ (x_μᵀξ)²``: its update
  ``ξ ← sign(XᵀXξ)`` is the sign of one linear-attention step (query ``ξ``,
  keys and values the patterns).
- Dense associative memory, ``F(z) = z^a`` (Krotov & Hopfield 2016), one
  synchronous sweep of the unit rule; for ``a = 2`` it is the classical rule
  without self-coupling, ``sign((XᵀX − diag XᵀX)ξ)``.
- Modern continuous energy ``E(ξ) = −β⁻¹ log Σ_μ exp(βx_μᵀξ) + ½ξᵀξ + β⁻¹ log N + ½M²``:
  its update ``ξ ← Xᵀ softmax(βXξ)`` is one softmax-attention step, and ``E``
  never increases along updates.

References are numpy float64, written here from the formulas. Binary updates
on ``±1`` patterns and cues are integer arithmetic, exact in floating point,
so they must agree exactly (ties, a zero field, keep the unit's value in both).
The continuous update's bound: the scores ``βx_μᵀξ`` carry an error of at most
``γ_d·β‖x_μ‖‖ξ‖``, which changes the softmax weights by that much relatively,
so ``‖ξ' − ξ'_ref‖ ≤ c·u·(d + β·M·‖ξ‖)·M`` per cue (``M = max_μ‖x_μ‖``,
``c = 200``). The energy is a sum of terms of size ``β⁻¹|lse|``, ``‖ξ‖²``,
``M²``: computed to ``c·u·(β⁻¹|lse| + ‖ξ‖² + M² + β⁻¹ log N)``; "never
increases" is asserted up to twice that.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import olsjax
from olsjax import testing

C, U = testing.DEFAULT_C, testing.unit_roundoff(np.float64)
#: (N patterns, d): one compilation per shape and rule.
SHAPES = ((6, 16), (20, 32))


def binary(rng, n, d) -> np.ndarray:
    return np.where(rng.standard_normal((n, d)) > 0, 1.0, -1.0)


def keep_sign(field, previous):
    return np.where(field > 0, 1.0, np.where(field < 0, -1.0, previous))


def classical(x, xi):
    return keep_sign(xi @ x.T @ x, xi)


def krotov(x, xi, a):
    """The Krotov–Hopfield unit rule, unit by unit (from the same ξ: synchronous)."""
    out = np.empty_like(xi)
    for b in range(xi.shape[0]):
        for i in range(xi.shape[1]):
            plus, minus = xi[b].copy(), xi[b].copy()
            plus[i], minus[i] = 1.0, -1.0
            field = np.sum((x @ plus) ** a - (x @ minus) ** a)
            out[b, i] = keep_sign(field, xi[b, i])
    return out


def modern(x, xi, beta):
    s = beta * xi @ x.T
    w = np.exp(s - s.max(axis=-1, keepdims=True))
    return (w / w.sum(axis=-1, keepdims=True)) @ x


def modern_energy(x, xi, beta):
    s = beta * xi @ x.T
    top = s.max(axis=-1)
    lse = top + np.log(np.exp(s - top[:, None]).sum(axis=-1))
    big = np.max(np.sum(x * x, axis=1))
    return -lse / beta + 0.5 * np.sum(xi * xi, axis=1) + np.log(len(x)) / beta + 0.5 * big, lse


def corrupt(rng, patterns, flips):
    cues = patterns.copy()
    for row in cues:
        row[rng.choice(len(row), flips, replace=False)] *= -1
    return cues


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), steps=st.sampled_from((1, 3)))
def test_binary_updates_equal_their_references(seed, shape, steps):
    rng = np.random.default_rng(seed)
    x = binary(rng, *shape)
    cues = binary(rng, 5, shape[1])
    expected = {"quadratic": cues, "poly2": cues, "poly3": cues}
    for _ in range(steps):
        expected = {
            "quadratic": classical(x, expected["quadratic"]),
            "poly2": krotov(x, expected["poly2"], 2),
            "poly3": krotov(x, expected["poly3"], 3),
        }
    out = {
        "quadratic": olsjax.hopfield_retrieve(x, cues, energy="quadratic", steps=steps),
        "poly2": olsjax.hopfield_retrieve(x, cues, energy="polynomial", degree=2, steps=steps),
        "poly3": olsjax.hopfield_retrieve(x, cues, energy="polynomial", degree=3, steps=steps),
    }
    for name in out:
        np.testing.assert_array_equal(np.asarray(out[name]), expected[name], err_msg=name)


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES))
def test_quadratic_update_is_sign_of_linear_attention(seed, shape):
    rng = np.random.default_rng(seed)
    x = binary(rng, *shape)
    cues = binary(rng, 4, shape[1])
    attention = np.asarray(olsjax.linear_attention(cues, x, x))  # ξᵀXᵀX/N: integers over N, rounded
    field = np.rint(attention * shape[0])  # the integers back (rounding error ≪ 1/2)
    np.testing.assert_array_equal(np.asarray(olsjax.hopfield_retrieve(x, cues)), keep_sign(field, cues))


def test_polynomial_degree_two_is_classical_without_self_coupling():
    rng = np.random.default_rng(2)
    x = binary(rng, 20, 32)
    cues = binary(rng, 50, 32)
    gram = x.T @ x
    expected = keep_sign(cues @ (gram - np.diag(np.diag(gram))), cues)
    out = np.asarray(olsjax.hopfield_retrieve(x, cues, energy="polynomial", degree=2))
    np.testing.assert_array_equal(out, expected)
    # Classical-like behaviour: few patterns (N ≪ d) are retrieved from 3 flipped bits by both rules.
    stored = x[:3]
    cues = corrupt(rng, stored, 3)
    for energy in ("quadratic", "polynomial"):
        np.testing.assert_array_equal(np.asarray(olsjax.hopfield_retrieve(stored, cues, energy=energy, degree=2)), stored)


def _continuous(seed, shape, log_beta):
    rng = np.random.default_rng(seed)
    n, d = shape
    x = rng.standard_normal((n, d))
    cues = rng.standard_normal((6, d))
    return x, cues, float(10.0**log_beta)


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), log_beta=st.floats(-2, 1))
def test_modern_update_is_one_softmax_attention_step(seed, shape, log_beta):
    x, cues, beta = _continuous(seed, shape, log_beta)
    out = np.asarray(olsjax.hopfield_retrieve(x, cues, energy="exponential", beta=beta))
    big = np.max(np.linalg.norm(x, axis=1))
    bound = C * U * (x.shape[1] + beta * big * np.linalg.norm(cues, axis=1)) * big  # module docstring
    assert np.all(np.linalg.norm(out - modern(x, cues, beta), axis=1) <= bound)
    # The same step through the library's softmax attention (scale β): the same numbers.
    step = np.asarray(olsjax.softmax_attention(cues, x, x, scale=beta))
    assert np.all(np.linalg.norm(out - step, axis=1) <= bound)


def _energy_tolerance(x, xi, beta, lse):
    big2 = np.max(np.sum(x * x, axis=1))
    return C * U * (np.abs(lse) / beta + np.sum(xi * xi, axis=1) + big2 + np.log(len(x)) / beta)


@given(seed=st.integers(0, 2**32 - 1), shape=st.sampled_from(SHAPES), log_beta=st.floats(-2, 1))
def test_modern_energy_never_increases(seed, shape, log_beta):
    x, xi, beta = _continuous(seed, shape, log_beta)
    for _ in range(5):
        energy = np.asarray(olsjax.hopfield_energy(x, xi, energy="exponential", beta=beta))
        reference, lse = modern_energy(x, xi, beta)
        tolerance = _energy_tolerance(x, xi, beta, lse)
        assert np.all(np.abs(energy - reference) <= tolerance)
        following = np.asarray(olsjax.hopfield_retrieve(x, xi, energy="exponential", beta=beta))
        after = np.asarray(olsjax.hopfield_energy(x, following, energy="exponential", beta=beta))
        assert np.all(after <= energy + 2 * tolerance)
        xi = following


def test_binary_energies_equal_their_formulas():
    rng = np.random.default_rng(4)
    x, xi = binary(rng, 20, 32), binary(rng, 7, 32)
    z = xi @ x.T
    np.testing.assert_array_equal(np.asarray(olsjax.hopfield_energy(x, xi)), -0.5 * np.sum(z**2, axis=1))
    np.testing.assert_array_equal(
        np.asarray(olsjax.hopfield_energy(x, xi, energy="polynomial", degree=3)), -np.sum(z**3, axis=1)
    )


# --- falsification --------------------------------------------------------------------


def test_falsification_wrong_scale_misses_the_attention_step():
    # The default softmax scale 1/√d in place of β: off by far more than the bound.
    x, cues, beta = _continuous(7, (20, 32), 0.5)
    out = np.asarray(olsjax.hopfield_retrieve(x, cues, energy="exponential", beta=beta))
    wrong = np.asarray(olsjax.softmax_attention(cues, x, x))
    big = np.max(np.linalg.norm(x, axis=1))
    bound = C * U * (32 + beta * big * np.linalg.norm(cues, axis=1)) * big
    assert np.min(np.linalg.norm(out - wrong, axis=1) / bound) > 1e3


def test_falsification_wrong_temperature_increases_the_energy():
    # ξ ← Xᵀ softmax(Xξ/β) (β inverted) from near stored patterns, at β = 10: it averages
    # the patterns instead of retrieving one, and the energy check must catch the rise.
    x, _, beta = _continuous(8, (20, 32), 1.0)
    xi = x[:6] + 0.1 * np.random.default_rng(8).standard_normal((6, 32))
    before, lse = modern_energy(x, xi, beta)
    after, _ = modern_energy(x, modern(x, xi, 1 / beta), beta)
    assert np.all(modern_energy(x, modern(x, xi, beta), beta)[0] <= before)  # the right step descends
    assert np.any(after > before + 1e6 * _energy_tolerance(x, xi, beta, lse))


def test_falsification_classical_with_patterns_as_columns():
    # XXᵀ in place of XᵀX (patterns taken as columns, d = N here): the update changes.
    rng = np.random.default_rng(9)
    x = binary(rng, 16, 16)
    cues = binary(rng, 20, 16)
    wrong = keep_sign(cues @ x @ x.T, cues)
    assert np.mean(np.asarray(olsjax.hopfield_retrieve(x, cues)) != wrong) > 0.1
