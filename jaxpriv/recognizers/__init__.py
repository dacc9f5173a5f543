"""Face recognizers ported to JAX, behind one interface (see ``base``)."""

from jaxpriv.recognizers.base import (
    Recognizer,
    available_recognizers,
    embedding_distance,
    load_recognizer,
    register,
    shared_recognizer,
)

__all__ = [
    "Recognizer",
    "available_recognizers",
    "embedding_distance",
    "load_recognizer",
    "register",
    "shared_recognizer",
]
