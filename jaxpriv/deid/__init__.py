"""DP de-identification (paper 001): style generator, latent projection (eq. 9/18/19), Laplace
mechanism (eq. 10–12), face swap and licence plates.

Kept import-light on purpose: import the submodules you need, e.g.
``from jaxpriv.deid import laplace`` or ``from jaxpriv.deid.generator import Generator``.
The ``deid`` protection method is registered by :mod:`jaxpriv.deid.method`.
"""
