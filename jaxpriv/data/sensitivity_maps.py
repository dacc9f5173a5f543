"""TFDS builder `sensitivity_maps`: SMNA ground-truth maps (Alg. 1) from generated shard files.

The manual dir is the output directory of `jaxpriv.smna.dataset.generate_maps` (a shards
directory, format in the module beside this one, `jaxpriv.data.map_shards`); nothing is
computed here, the shards are copied into `array_record` files readable without TensorFlow via
`builder.as_data_source(split)`. Splits: those generated of `train`, `validation` and `test`
(the identity split of `jaxpriv.data.splits`). Examples keep the generation order
(round-robin over identities).

Features of an example (`S` = config `image_size`, 64 by default):

* `image`: uint8 RGB ``(S, S, 3)``, the SMNA image (dlib chip area-resized, see
  `jaxpriv.smna.sensitivity.to_smna_image`);
* `identity`: class label of `identity_faces` (names = its identity folders);
  `identity_name`, `filename` (`<identity>/<file>`): text (`bytes` from a data source);
* `map_black`, `map_white`: float32 ``(S, S)``, s = d(pixel set to black/white) − d(x);
* `clean_distance`: float32, d(x) to the identity's reference portrait;
* `reference_embedding`: float32 ``(D,)``, embedding of that portrait's full-size chip.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from jaxpriv.data.build_lock import exclusive_build
from jaxpriv.data.map_shards import read_manifest, read_shard, shard_paths
from jaxpriv.errors import JaxprivError

_MANUAL_DOWNLOAD_INSTRUCTIONS = """\
Give as manual dir the output directory of `jaxpriv.smna.dataset.generate_maps` (or the
--workdir of `python -m experiments.main --config experiments/configs/smna_maps.py`): it holds
`manifest.json` and `train/shard-00000.npz`, ... (and `validation/...`, `test/...`).
"""


@dataclasses.dataclass(eq=False)
class SensitivityMapsConfig(tfds.core.BuilderConfig):
    """Config of `SensitivityMaps`: image/map side and reference embedding size."""

    image_size: int = 64
    embedding_dim: int = 128


_CONFIGS = [SensitivityMapsConfig(name="size64", description="64x64 images and maps (paper).")]


def sensitivity_maps_config(
    image_size: int = 64, embedding_dim: int = 128
) -> SensitivityMapsConfig:
    """Config `size<N>` (embedding size 128) or `size<N>_d<D>` for other recognizers."""
    for config in _CONFIGS:
        if config.image_size == image_size and config.embedding_dim == embedding_dim:
            return config
    name = f"size{image_size}" + ("" if embedding_dim == 128 else f"_d{embedding_dim}")
    return SensitivityMapsConfig(name=name, image_size=image_size, embedding_dim=embedding_dim,
                                 description=f"{image_size}x{image_size} images and maps.")


class SensitivityMaps(tfds.core.GeneratorBasedBuilder):
    """SMNA sensitivity maps (black and white noise) of face images, from local shard files."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "First release: image, identity, maps (black, white), clean "
                              "distance, reference embedding; array_record only."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = _MANUAL_DOWNLOAD_INSTRUCTIONS
    BUILDER_CONFIGS = _CONFIGS
    DEFAULT_BUILDER_CONFIG_NAME = "size64"
    # tfds 4.9.10's own `code_path` needs `importlib_resources` (tensorflow/datasets#11212).
    code_path = Path(__file__)

    def __init__(self, *, file_format: str = "array_record", **kwargs: Any) -> None:
        super().__init__(file_format=file_format, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        s = self.builder_config.image_size
        d = self.builder_config.embedding_dim

        def tensor(shape: tuple[int, ...], dtype: Any, doc: str) -> tfds.features.Tensor:
            return tfds.features.Tensor(shape=shape, dtype=dtype, encoding="zlib", doc=doc)

        features = tfds.features.FeaturesDict({
            "image": tensor((s, s, 3), np.uint8, "SMNA image, RGB uint8."),
            "identity": tfds.features.ClassLabel(doc="identity_faces label."),
            "identity_name": tfds.features.Text(doc="Identity folder name."),
            "filename": tfds.features.Text(doc="Relative path <identity>/<file>."),
            "map_black": tensor((s, s), np.float32, "d(pixel set to black) - d(x)."),
            "map_white": tensor((s, s), np.float32, "d(pixel set to white) - d(x)."),
            "clean_distance": tfds.features.Scalar(dtype=np.float32, doc="d(x) to reference."),
            "reference_embedding": tensor((d,), np.float32, "Reference portrait embedding."),
        })
        return tfds.core.DatasetInfo(
            builder=self,
            description="Ground-truth SMNA sensitivity maps (Alg. 1) of identity face images.",
            features=features,
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(
        self, dl_manager: tfds.download.DownloadManager
    ) -> dict[str, Iterator[tuple[str, dict[str, Any]]]]:
        root = Path(dl_manager.manual_dir)
        manifest = read_manifest(root)
        if manifest["image_size"] != self.builder_config.image_size:
            raise JaxprivError(f"shards in {root} are {manifest['image_size']}px, config "
                               f"{self.builder_config.name} wants {self.builder_config.image_size}")
        self.info.features["identity"].names = list(manifest["identity_names"])
        self.info.metadata["source_dir"] = str(root.resolve())
        self.info.metadata["manifest"] = {k: v for k, v in manifest.items() if k != "splits"}
        splits = {}
        for split in manifest["splits"]:
            paths = shard_paths(root / split)
            if paths:
                splits[split] = self._generate_examples(paths)
        if not splits:
            raise JaxprivError(f"no shard files under {root}")
        return splits

    def _generate_examples(self, paths: Sequence[Path]) -> Iterator[tuple[str, dict[str, Any]]]:
        for path in paths:
            data = read_shard(path)
            for i in range(len(data["image"])):
                filename = str(data["filename"][i])
                yield filename, {
                    "image": data["image"][i],
                    "identity": int(data["identity"][i]),
                    "identity_name": str(data["identity_name"][i]),
                    "filename": filename,
                    "map_black": data["map_black"][i],
                    "map_white": data["map_white"][i],
                    "clean_distance": np.float32(data["clean_distance"][i]),
                    "reference_embedding": data["reference_embedding"][i],
                }


def build_sensitivity_maps(
    shards_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    image_size: int = 64,
    embedding_dim: int = 128,
) -> SensitivityMaps:
    """Prepare `sensitivity_maps` from `shards_dir` into `data_dir` (reused if already there;
    built once when processes ask together: :func:`exclusive_build`)."""
    config = sensitivity_maps_config(image_size, embedding_dim)
    with exclusive_build(data_dir):
        builder = SensitivityMaps(data_dir=os.fspath(data_dir), config=config)
        if not builder.is_prepared():
            builder.download_and_prepare(
                download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(shards_dir))
            )
    return builder


def prepared_configs(data_dir: str | os.PathLike[str]) -> list[str]:
    """Names of the `sensitivity_maps` configs present under `data_dir`."""
    root = Path(data_dir) / "sensitivity_maps"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("size"))


def load_sensitivity_maps(
    data_dir: str | os.PathLike[str], split: str = "train", image_size: int | None = None,
    embedding_dim: int = 128,
) -> Sequence[dict[str, Any]]:
    """Random-access data source of a prepared `sensitivity_maps` (default: the only config)."""
    if image_size is None:
        names = prepared_configs(data_dir)
        if len(names) != 1:
            raise JaxprivError(f"sensitivity_maps configs in {data_dir}: {names}; give image_size")
        size, _, dim = names[0].removeprefix("size").partition("_d")
        image_size, embedding_dim = int(size), int(dim) if dim else embedding_dim
    config = sensitivity_maps_config(image_size, embedding_dim)
    builder = SensitivityMaps(data_dir=os.fspath(data_dir), config=config)
    if not builder.is_prepared():
        raise JaxprivError(f"sensitivity_maps/{config.name} is not prepared in {data_dir}")
    return builder.as_data_source(split)
