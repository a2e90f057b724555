"""Gradient training with optax: one loop for every trained model of olsjax.

``train`` minimises a scalar loss of a parameter pytree from a given (seeded)
initialisation. Steps run inside ``jax.lax.scan`` in chunks of ``chunk``
steps, so a thousand Adam steps cost one compile and a few dispatches, not a
thousand; between chunks the loop records losses, evaluates the optional
validation loss (early stopping keeps the best parameters seen) and updates a
progress bar (``tqdm``; shown only on a terminal unless ``progress=True``).

The loss is full-batch by default, ``loss(params)``. With ``key`` it is
stochastic, ``loss(params, key)``: each step gets a fresh subkey (a new batch
of tasks, say), split deterministically from ``key``. With ``data`` the data
are an argument, ``loss(params, data)`` (``loss(params, data, key)``), not a
closure: the compiled loop is then reused by every call with the same
``loss`` function, optimiser and shapes (a module-level ``loss`` and the
default Adam at one learning rate fit many data sets on one compile).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm  # the text bar: notebooks without ipywidgets warn with tqdm.auto

PyTree = Any


@dataclasses.dataclass(frozen=True)
class Trained:
    """What ``train`` returns.

    **Fields:** ``params``: the final parameters (with ``validation``: the best
    by validation loss); ``losses``: ``(steps_run,)`` training loss at each
    step, evaluated before that step's update; ``validation``: ``(chunks,)``
    validation loss after each chunk (empty without ``validation``);
    ``validation_steps``: the step count at each of those evaluations;
    ``best_step``: the step count of the returned parameters; ``stopped_early``.
    """

    params: PyTree
    losses: np.ndarray
    validation: np.ndarray
    validation_steps: np.ndarray
    best_step: int
    stopped_early: bool


def _check(steps: int, chunk: int, patience: int | None) -> None:
    for name, value in (("steps", steps), ("chunk", chunk)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, int) or patience < 1):
        raise ValueError(f"patience must be a positive int (chunks without improvement) or None, got {patience!r}")


@functools.lru_cache(maxsize=16)
def _adam(learning_rate: float) -> optax.GradientTransformation:
    """The default optimiser, one object per rate, so that ``_chunk_runner``'s cache can find it again."""
    return optax.adam(learning_rate)


@functools.lru_cache(maxsize=16)
def _chunk_runner(loss: Callable, optimizer: optax.GradientTransformation, stochastic: bool, with_data: bool):
    """A jitted ``(params, state, data, keys) → (params, state, losses)`` running one chunk of steps."""
    value_and_grad = jax.value_and_grad(loss)

    def step(data, carry, key):
        params, state = carry
        args = ((data,) if with_data else ()) + ((key,) if stochastic else ())
        value, grads = value_and_grad(params, *args)
        updates, state = optimizer.update(grads, state, params)
        return (optax.apply_updates(params, updates), state), value

    @jax.jit
    def run(params, state, data, keys):
        (params, state), values = jax.lax.scan(functools.partial(step, data), (params, state), keys)
        return params, state, values

    def run_standard(params, state, data, keys):
        # optax mixes Python floats with int32 step counts: trace it under standard
        # promotion, also when the caller (or a test suite) runs JAX with strict promotion.
        with jax.numpy_dtype_promotion("standard"):
            return run(params, state, data, keys)

    return run_standard


def train(
    loss: Callable[..., jax.Array],
    params: PyTree,
    *,
    steps: int = 1000,
    learning_rate: float = 1e-2,
    optimizer: optax.GradientTransformation | None = None,
    data: PyTree = None,
    key: jax.Array | None = None,
    validation: Callable[[PyTree], jax.Array] | None = None,
    patience: int | None = None,
    chunk: int = 100,
    progress: bool | None = None,
    description: str = "training",
) -> Trained:
    """Minimise ``loss`` from ``params`` with optax (Adam at ``learning_rate`` unless ``optimizer`` is given).

    **Arguments:** ``loss``: ``loss(params)``, with ``data`` and ``key`` given
    ``loss(params, data, key)`` (either one may be absent), a scalar,
    differentiable in ``params``; ``params``: the initial pytree (seed it
    yourself); ``steps``: optimiser steps; ``data``: a pytree of arrays passed
    to ``loss`` (traced, so a new data set of the same shapes reuses the
    compiled loop); ``key``: a ``jax.random`` key for a stochastic loss; ``validation``: ``validation(params)``,
    evaluated after every chunk; ``patience``: stop after this many chunks
    without a lower validation loss (needs ``validation``); ``chunk``: steps per
    compiled scan; ``progress``: a progress bar (``None``: only on a terminal).

    **Returns:** a ``Trained``. **Raises:** ``ValueError`` for non-positive
    ``steps``/``chunk``/``patience``, ``patience`` without ``validation``, or a
    loss that became NaN/inf (naming the step).
    """
    _check(steps, chunk, patience)
    if patience is not None and validation is None:
        raise ValueError("patience (early stopping) needs a validation loss: pass validation=")
    optimizer = optimizer if optimizer is not None else _adam(float(learning_rate))
    stochastic = key is not None
    run = _chunk_runner(loss, optimizer, stochastic, data is not None)
    with jax.numpy_dtype_promotion("standard"):
        state = optimizer.init(params)
    keys = jax.random.split(key, steps) if stochastic else jnp.zeros((steps,))
    losses: list[np.ndarray] = []
    val, val_steps = [], []
    best, best_params, best_step, since_best = math.inf, params, steps, 0
    done, stopped = 0, False
    disable = None if progress is None else not progress
    with tqdm(total=steps, desc=description, disable=disable, leave=False) as bar:
        while done < steps:
            size = min(chunk, steps - done)
            params, state, values = run(params, state, data, keys[done : done + size])
            values = np.asarray(values)
            if not np.all(np.isfinite(values)):
                bad = done + int(np.argmin(np.isfinite(values)))
                raise ValueError(f"the training loss became non-finite at step {bad} (lower learning_rate?)")
            losses.append(values)
            done += size
            bar.update(size)
            bar.set_postfix(loss=f"{values[-1]:.3g}")
            if validation is None:
                continue
            v = float(validation(params))
            val.append(v)
            val_steps.append(done)
            if v < best:
                best, best_params, best_step, since_best = v, params, done, 0
            else:
                since_best += 1
            if patience is not None and since_best >= patience:
                stopped = True
                break
    if validation is None:
        best_params, best_step = params, done
    return Trained(
        params=best_params,
        losses=np.concatenate(losses),
        validation=np.asarray(val),
        validation_steps=np.asarray(val_steps, dtype=int),
        best_step=best_step,
        stopped_early=stopped,
    )
