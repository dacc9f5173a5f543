"""Datasets: the `identity_faces` TFDS builder over a folder of `<identity>/<image>` files."""

from jaxpriv.data.identity_faces import (
    IdentityFaces,
    IdentityFacesConfig,
    build_identity_faces,
    identity_faces_config,
    list_identity_images,
    load_identity_faces,
    split_identities,
)

__all__ = [
    "IdentityFaces",
    "IdentityFacesConfig",
    "build_identity_faces",
    "identity_faces_config",
    "list_identity_images",
    "load_identity_faces",
    "split_identities",
]
