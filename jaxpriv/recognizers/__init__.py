"""Face recognizers ported to JAX, behind one interface (see ``base``)."""

from jaxpriv.recognizers.base import (
    Recognizer,
    available_recognizers,
    embedding_distance,
    load_recognizer,
    register,
)

__all__ = [
    "Recognizer",
    "available_recognizers",
    "embedding_distance",
    "load_recognizer",
    "register",
]
