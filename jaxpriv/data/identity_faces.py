"""TFDS builder `identity_faces`: a folder of `<identity>/<image>` files as a dataset.

The source folder is given as the TFDS manual dir; nothing is downloaded. Each sub-folder
is one identity, each image file inside it one example. The dataset is written in the
`array_record` format and read without TensorFlow through `builder.as_data_source("train")`.

Features of an example:

* `image`: uint8 RGB pixels, `(H, W, 3)`. With the default `native` config every image
  keeps its own size (dynamic shape); with an `image_size` config every image is resized
  (plain bicubic resize, no crop) to `(image_size, image_size, 3)`.
* `identity`: class label; names are the identity folder names (those holding image files,
  even unreadable ones) in sorted order.
* `identity_name`, `filename`: text (`bytes` when read from a data source);
  `filename` is the relative path `<identity>/<file>`.
* `is_reference`: True for the first readable image of its identity in sorted file-name
  order (the "official portrait"); `index_in_identity`: rank among the readable images of
  the identity in that order, so `is_reference == (index_in_identity == 0)`.

Examples are stored unshuffled, in (identity, file name) order, so index 0 of the data
source is the reference image of the first identity. Unreadable files are skipped with a
single warning; their relative paths are kept in `builder.info.metadata["skipped_files"]`.
One data dir holds one source folder: a second build with the same data dir and config
reuses the prepared data whatever the manual dir. Pre-aligned crops (glint) and loose photos
(celeba299: its `landmarks.csv` is a file, not an identity folder, so it is ignored) build alike;
finding the faces is left to the user (`jaxpriv.smna.dataset.generate_maps` detects them).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from jaxpriv.data.build_lock import exclusive_build
from jaxpriv.errors import JaxprivError
from jaxpriv.io import IMAGE_EXTENSIONS, load_image

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Give as manual dir a folder with one sub-folder per identity, each holding that person's
images (PNG, JPEG, PGM, ...), e.g. `faces/Tom_Hanks/0.png`. Hidden files, sub-folders of
identity folders and files without an image extension are ignored.
"""


@dataclasses.dataclass(eq=False)
class IdentityFacesConfig(tfds.core.BuilderConfig):
    """Config of `IdentityFaces`: `image_size=None` keeps native sizes, else resize square."""

    image_size: int | None = None


_CONFIGS = [
    IdentityFacesConfig(name="native", description="Images at their own size."),
    IdentityFacesConfig(name="size112", image_size=112, description="Images resized to 112x112."),
]


def identity_faces_config(image_size: int | None = None) -> IdentityFacesConfig:
    """Config for `image_size`: `native` for None, `size<N>` (N x N resize) otherwise."""
    if image_size is None:
        return _CONFIGS[0]
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 1:
        raise ValueError(f"image_size must be a positive int or None, got {image_size!r}")
    for config in _CONFIGS:
        if config.image_size == image_size:
            return config
    return IdentityFacesConfig(
        name=f"size{image_size}",
        image_size=image_size,
        description=f"Images resized to {image_size}x{image_size}.",
    )


def list_identity_images(root: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Map each identity folder under `root` to its sorted image file names.

    Only direct children are looked at; hidden entries and files whose suffix is not in
    `jaxpriv.io.IMAGE_EXTENSIONS` are ignored, and folders without image files are left out.
    """
    root = Path(root)
    if not root.is_dir():
        raise JaxprivError(f"identity folder not found: {root}")
    images: dict[str, list[str]] = {}
    for folder in sorted(root.iterdir(), key=lambda p: p.name):
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        files = sorted(
            f.name
            for f in folder.iterdir()
            if not f.name.startswith(".") and f.suffix.lower() in IMAGE_EXTENSIONS and f.is_file()
        )
        if files:
            images[folder.name] = files
    return images


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Resize HxWx3 uint8 pixels to size x size (bicubic) unless already that size."""
    if pixels.shape[:2] == (size, size):
        return pixels
    resized = Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8)


class IdentityFaces(tfds.core.GeneratorBasedBuilder):
    """Faces of people, one folder per identity, from a local folder (manual dir)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "First release: image, identity, identity_name, filename, is_reference, "
        "index_in_identity; native-size or square-resized images; array_record only.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_BUILDER_CONFIG_NAME = "native"
    # tfds 4.9.10's own `code_path` imports `importlib_resources`, which it only requires on
    # Python < 3.9 (tensorflow/datasets#11212); this file's path is all it would compute.
    code_path = Path(__file__)

    def __init__(self, *, file_format: str = "array_record", **kwargs: Any) -> None:
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        size = self.builder_config.image_size
        shape = (None, None, 3) if size is None else (size, size, 3)
        features = tfds.features.FeaturesDict(
            {
                "image": tfds.features.Tensor(
                    shape=shape, dtype=np.uint8, encoding="zlib", doc="RGB pixels, HxWx3."
                ),
                "identity": tfds.features.ClassLabel(doc="Identity folder, sorted names."),
                "identity_name": tfds.features.Text(doc="Identity folder name."),
                "filename": tfds.features.Text(doc="Relative path <identity>/<file>."),
                "is_reference": tfds.features.Scalar(
                    dtype=np.bool_, doc="First readable image of its identity."
                ),
                "index_in_identity": tfds.features.Scalar(
                    dtype=np.int32, doc="Rank among the identity's readable images."
                ),
            }
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description="Faces of people from a local folder, one sub-folder per identity.",
            features=features,
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(
        self, dl_manager: tfds.download.DownloadManager
    ) -> dict[str, Iterator[tuple[str, dict[str, Any]]]]:
        root = Path(dl_manager.manual_dir)
        images = list_identity_images(root)
        if not images:
            raise JaxprivError(f"no identity folder with images in {root}")
        self.info.features["identity"].names = list(images)
        self.info.metadata["source_dir"] = str(root.resolve())
        return {"train": self._generate_examples(root, images)}

    def _generate_examples(
        self, root: Path, images: dict[str, list[str]]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        size = self.builder_config.image_size
        skipped: list[str] = []
        reasons: list[str] = []
        for label, (name, files) in enumerate(images.items()):
            index = 0
            for file in files:
                relative = f"{name}/{file}"
                try:
                    pixels = load_image(root / name / file)
                except JaxprivError as error:
                    skipped.append(relative)
                    reasons.append(str(error))  # names the file
                    continue
                if size is not None:
                    pixels = _resize(pixels, size)
                yield (
                    relative,
                    {
                        "image": pixels,
                        "identity": label,
                        "identity_name": name,
                        "filename": relative,
                        "is_reference": index == 0,
                        "index_in_identity": index,
                    },
                )
                index += 1
        self.info.metadata["skipped_files"] = skipped
        if len(skipped) == sum(len(files) for files in images.values()):
            raise JaxprivError(f"no readable image in {root}: {'; '.join(reasons[:3])}")
        if skipped:
            shown = "; ".join(reasons[:5]) + ("; ..." if len(reasons) > 5 else "")
            warnings.warn(
                f"identity_faces: skipped {len(skipped)} unreadable file(s): {shown}",
                stacklevel=2,
            )


def build_identity_faces(
    manual_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    image_size: int | None = None,
) -> IdentityFaces:
    """Prepare `identity_faces` from `manual_dir` into `data_dir` (reused if already there;
    processes building the same `data_dir` together build it once: :func:`exclusive_build`)."""
    with exclusive_build(data_dir):
        builder = IdentityFaces(data_dir=os.fspath(data_dir),
                                config=identity_faces_config(image_size))
        if builder.is_prepared():
            source = builder.info.metadata.get("source_dir")
            if source is not None and source != str(Path(manual_dir).resolve()):
                warnings.warn(
                    f"identity_faces in {builder.data_dir} was built from {source}, "
                    f"not {manual_dir}; reusing it (use another data_dir to rebuild)",
                    stacklevel=2,
                )
            return builder
        if not Path(manual_dir).is_dir():
            raise JaxprivError(f"identity folder not found: {manual_dir}")
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
        )
        return builder


def load_identity_faces(
    manual_dir: str | os.PathLike[str] | None,
    data_dir: str | os.PathLike[str],
    image_size: int | None = None,
    split: str = "train",
) -> Sequence[dict[str, Any]]:
    """Random-access data source of `identity_faces`, building it first if needed.

    With `manual_dir=None` the dataset must already be prepared in `data_dir`.
    """
    if manual_dir is not None:
        builder = build_identity_faces(manual_dir, data_dir, image_size)
    else:
        config = identity_faces_config(image_size)
        builder = IdentityFaces(data_dir=os.fspath(data_dir), config=config)
        if not builder.is_prepared():
            raise JaxprivError(
                f"identity_faces/{config.name} is not prepared in {data_dir}; give manual_dir"
            )
    return builder.as_data_source(split)
