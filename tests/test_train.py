"""``olsjax.train``: the optax loop reaches known minimisers, records what it says, stops early, refuses bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from olsjax.train import train

X = jnp.linspace(-1.0, 1.0, 50)
Y = 2.0 * X + 1.0  # noiseless: the minimiser is exactly (a, b) = (2, 1)


def line_loss(p):
    return jnp.mean((p["a"] * X + p["b"] - Y) ** 2)


START = {"a": jnp.zeros(()), "b": jnp.zeros(())}


def test_reaches_the_least_squares_line():
    t = train(line_loss, START, steps=1500, learning_rate=0.05)
    # Adam on a 2-parameter convex quadratic from 0: converged far below the 1e-6 asked for here.
    np.testing.assert_allclose([t.params["a"], t.params["b"]], [2.0, 1.0], atol=1e-6)
    assert t.losses.shape == (1500,) and t.best_step == 1500 and not t.stopped_early
    assert t.losses[0] == pytest.approx(float(line_loss(START)))  # loss before the first update
    assert t.losses[-1] < 1e-10 * t.losses[0]


def test_chunking_does_not_change_the_trajectory():
    a = train(line_loss, START, steps=230, chunk=230)
    b = train(line_loss, START, steps=230, chunk=7)  # 33 chunks, the last one short
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.params["a"], b.params["a"])


def test_custom_optimizer_is_used():
    t = train(line_loss, START, steps=1, optimizer=optax.sgd(0.5))
    grad_a = float(jax.grad(line_loss)(START)["a"])
    assert float(t.params["a"]) == pytest.approx(-0.5 * grad_a)  # one SGD step, exactly


def test_stochastic_loss_gets_fresh_keys_and_is_reproducible():
    def noisy(p, key):
        noise = jax.random.normal(key, X.shape)
        return jnp.mean((p["a"] * X + p["b"] - Y - 0.01 * noise) ** 2)

    a = train(noisy, START, steps=50, key=jax.random.key(3))
    b = train(noisy, START, steps=50, key=jax.random.key(3))
    c = train(noisy, START, steps=50, key=jax.random.key(4))
    np.testing.assert_array_equal(a.losses, b.losses)
    assert not np.array_equal(a.losses, c.losses)


def test_early_stopping_keeps_the_best_parameters():
    # Validation prefers a = 0: training moves a away from it, so validation only worsens.
    validation = lambda p: p["a"] ** 2  # noqa: E731
    t = train(line_loss, START, steps=1000, learning_rate=0.05, validation=validation, patience=3, chunk=10)
    assert t.stopped_early
    assert t.validation_steps.tolist() == [10, 20, 30, 40]  # best at 10, then 3 chunks without improvement
    assert t.best_step == 10 and len(t.losses) == 40
    assert float(validation(t.params)) == t.validation[0]  # the same function of the same kept parameters


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(steps=0), "steps"),
        (dict(steps=-3), "steps"),
        (dict(chunk=0), "chunk"),
        (dict(patience=0, validation=line_loss), "patience"),
        (dict(patience=2), "validation"),
    ],
)
def test_bad_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        train(line_loss, START, **kwargs)


def test_divergence_is_reported_with_its_step():
    with pytest.raises(ValueError, match="non-finite at step"):
        # SGD at rate 10 on (a − 1)²: a − 1 is multiplied by −19 per step, past float64's range by step ~245.
        train(lambda p: (p["a"] - 1.0) ** 2, START, steps=400, optimizer=optax.sgd(10.0))


def test_data_argument_reuses_the_compiled_loop():
    traces = []

    def loss(p, data):
        traces.append(1)  # runs only while JAX traces the loop
        x, y = data
        return jnp.mean((p["a"] * x + p["b"] - y) ** 2)

    fits = [train(loss, START, data=(X, s * Y), steps=1500, learning_rate=0.05, chunk=500) for s in (1.0, 3.0)]
    # Traced once (value_and_grad inside one scan) for both data sets, not once per call.
    assert len(traces) == 1
    # Each fit saw its own data: the slope scales with the targets (converged as in the first test).
    np.testing.assert_allclose([float(f.params["a"]) for f in fits], [2.0, 6.0], atol=1e-6)
