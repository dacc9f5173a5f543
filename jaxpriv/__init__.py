"""jaxpriv: identity protection for images, in JAX/Flax."""

from jaxpriv.errors import JaxprivError

__all__ = ["JaxprivError"]
__version__ = "0.1.0"
