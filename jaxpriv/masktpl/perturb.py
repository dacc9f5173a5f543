"""Perturbation generation network: keyed noise + face → low-bit pad inside the template.

The paper's generator (Fig. 5) is DCGAN-style (no pooling, no fully connected layers beyond the
noise projection; Adam lr 2e-4, β1 = 0.5) with the mask template added in layer 4 and an XOR with
the face as its fifth layer; a recognizer R_l replaces the discriminator and the generator γ
maximises Dist(R_l(φ), R_l(φ ⊕ |γ(φ + φ̂)|))·τ under a perceptual budget σ (eq. 7).

Here the generator outputs, per pixel and colour, logits of the ``MAX_BITS`` lowest bit planes of
the pad P. With k bits in use the protected chip is x ⊕ (M ⊙ P) on those planes. XOR is made
differentiable bit by bit: out_b = x_b + p_b − 2·x_b·p_b (exact for p_b ∈ {0, 1}), so the pixel
change is Δ = Σ_b 2^b·p_b·(1 − 2·x_b) (:func:`soft_xor`); hard bits in the forward pass,
sigmoid gradients in the backward pass (straight-through).

Superposition (paper: "multiple identification algorithms ... superimposed"): the adversarial
loss is −Σ_l τ_l·mean Dist_l over a list of recognizers with weights τ
(:func:`superposed_distance`).

Note on what the generator can do: to restore exactly, P may depend only on the high bits (the
low bits are what the pad changes), so the *sign* of Δ = 2^b(1 − 2x_b) at each flipped bit is
decided by the unseen low bits. The generator controls where and how many bits flip, not the
direction of the change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxpriv.masktpl.template import UpConv
from jaxpriv.metrics import ssim_jax

MAX_BITS = 4  # planes the generator outputs; k ≤ MAX_BITS are used
Z_DIM = 64


class PerturbGenerator(nn.Module):
    """DCGAN-style generator. Inputs: 64×64 face in [0, 1] (high bits only), the 64×64 template
    (float 0/1), the keyed noise z ``(N, Z_DIM)`` and k/MAX_BITS ``(N,)``. Output: bit-plane
    logits ``(N, 64, 64, 3, MAX_BITS)``. Strided convolutions down, transposed convolutions up,
    ReLU, no pooling; the template multiplies the features of layer 4."""

    width: int = 32

    @nn.compact
    def __call__(self, face: jax.Array, mask: jax.Array, z: jax.Array,
                 kfrac: jax.Array) -> jax.Array:
        w = self.width
        n, s = face.shape[0], face.shape[1]
        cond = jnp.broadcast_to(kfrac[:, None, None, None], (n, s, s, 1))
        h = jnp.concatenate([face - 0.5, mask[..., None], cond], axis=-1)
        skips = []
        for i, f in enumerate((w, 2 * w, 4 * w)):  # 64 → 32 → 16 → 8
            h = nn.relu(nn.Conv(f, (3, 3), name=f"enc{i}a")(h))
            skips.append(h)
            h = nn.relu(nn.Conv(f, (4, 4), strides=(2, 2), name=f"enc{i}b")(h))
        proj = nn.Dense(8 * 8 * w, name="project_z")(z).reshape(n, 8, 8, w)
        h = jnp.concatenate([h, nn.relu(proj)], axis=-1)
        for i, f in enumerate((4 * w, 2 * w, w)):  # 8 → 16 → 32 → 64
            h = nn.relu(UpConv(f, name=f"dec{i}")(h))
            h = jnp.concatenate([h, skips[-1 - i]], axis=-1)
        h = nn.relu(nn.Conv(w, (3, 3), name="layer4")(h)) * mask[..., None]  # template, layer 4
        out = nn.Conv(3 * MAX_BITS, (3, 3), name="out")(h)
        return out.reshape(n, s, s, 3, MAX_BITS)


GENERATOR = PerturbGenerator()


def bit_logits_at(logits64: jax.Array, size: int) -> jax.Array:
    """Resize bit-plane logits ``(N, 64, 64, 3, B)`` to chip size ``(N, size, size, 3, B)``."""
    n, _, _, c, b = logits64.shape
    flat = logits64.reshape(n, logits64.shape[1], logits64.shape[2], c * b)
    return jax.image.resize(flat, (n, size, size, c * b), "linear").reshape(n, size, size, c, b)


def plane_mask(k: jax.Array | int, n_planes: int = MAX_BITS) -> jax.Array:
    """1.0 for bit planes b < k, else 0.0; ``k`` scalar or ``(N,)`` → ``(…, n_planes)``."""
    return (jnp.arange(n_planes) < jnp.asarray(k)[..., None]).astype(jnp.float32)


def straight_through_bits(logits: jax.Array) -> jax.Array:
    """Hard bits (logit > 0) forward, sigmoid gradient backward."""
    soft = jax.nn.sigmoid(logits)
    hard = (logits > 0).astype(soft.dtype)
    return soft + jax.lax.stop_gradient(hard - soft)


def low_bit_planes(x_u8: jax.Array, n_planes: int = MAX_BITS) -> jax.Array:
    """Bits b < n_planes of uint8 pixels as float 0/1: ``(..., n_planes)``."""
    x = x_u8.astype(jnp.int32)[..., None]
    return ((x >> jnp.arange(n_planes)) & 1).astype(jnp.float32)


def soft_xor(x_u8: jax.Array, bits: jax.Array) -> jax.Array:
    """x ⊕ Σ_b 2^b·bits_b as float pixel values 0..255 (exact for 0/1 bits, differentiable in
    ``bits``): x + Σ_b 2^b·p_b·(1 − 2·x_b). ``x_u8`` ``(..., 3)``, ``bits`` ``(..., 3, B)``."""
    xb = low_bit_planes(x_u8, bits.shape[-1])
    weights = 2.0 ** jnp.arange(bits.shape[-1], dtype=jnp.float32)
    delta = jnp.sum(weights * bits * (1.0 - 2.0 * xb), axis=-1)
    return x_u8.astype(jnp.float32) + delta


@dataclasses.dataclass(frozen=True)
class RecognizerTerm:
    """One recognizer of the superposition: ``apply(params, x01)`` at ``input_size``, weight
    ``tau`` (eq. 7's recognition ability coefficient τ)."""

    name: str
    apply: Callable[[Any, jax.Array], jax.Array]
    params: Any
    input_size: int
    tau: float = 1.0


def resize_linear(x01: jax.Array, size: int) -> jax.Array:
    """Resize float ``(N, S, S, 3)`` chips to ``size`` on device (antialiased bilinear; no-op
    when equal). Cf. :func:`jaxpriv.deid.project.resize_chips` for uint8 area resizing."""
    if x01.shape[1] == size:
        return x01
    return jax.image.resize(x01, (x01.shape[0], size, size, 3), "linear", antialias=True)


def superposed_distance(
    terms: Sequence[RecognizerTerm],
    params: Sequence[Any],
    protected01: jax.Array,
    clean_embeddings: Sequence[jax.Array],
) -> tuple[jax.Array, list[jax.Array]]:
    """Σ_l τ_l·Dist_l (eq. 7) with Dist_l = ‖R_l(protected) − R_l(clean)‖ per chip.

    Returns (weighted sum ``(N,)``, list of per-recognizer distances ``(N,)``)."""
    total = jnp.zeros(protected01.shape[0], jnp.float32)
    dists = []
    for term, p, clean in zip(terms, params, clean_embeddings, strict=True):
        e = term.apply(p, resize_linear(protected01, term.input_size))
        d = jnp.sqrt(jnp.sum(jnp.square(e - clean), axis=-1) + 1e-12)
        dists.append(d)
        total = total + term.tau * d
    return total, dists


def effective_bits(k: int, budget: str, sigma: float) -> int:
    """Bit planes allowed by the budget: with ``budget="linf"`` only planes whose full flip stays
    within σ (2^(b+1) − 1 ≤ σ, σ in 0..255 levels); with ``"ssim"`` all k (σ is a soft SSIM
    floor in the loss, see :func:`budget_penalty`)."""
    if budget == "linf":
        allowed = 0
        while allowed < 8 and 2 ** (allowed + 1) - 1 <= sigma:
            allowed += 1
        return min(k, allowed)
    if budget == "ssim":
        return k
    raise ValueError(f"budget must be 'ssim' or 'linf', got {budget!r}")


def budget_penalty(protected255: jax.Array, clean255: jax.Array, budget: str, sigma: float,
                   weight: float) -> jax.Array:
    """The σ constraint of eq. 7 as a penalty ``(N,)``: for ``"ssim"``,
    weight·max(0, σ − SSIM(protected, clean)); for ``"linf"`` zero (enforced by
    :func:`effective_bits`)."""
    if budget == "ssim":
        s = ssim_jax(protected255, clean255, 255.0)
        return weight * jax.nn.relu(sigma - s)
    return jnp.zeros(protected255.shape[0], jnp.float32)
