"""experiments/smna_table3.py on a tiny map set: 3 real held-out faces with real references,
stand-in maps and untrained width-0.125 generators (the table's wiring, not its numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

from .conftest import GLINT, ROOT

LEVELS = (500.0, 1250.0)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> tuple[dict, Path]:
    if not GLINT.is_dir():
        pytest.skip(f"glint faces not found at {GLINT}")
    from PIL import Image

    from experiments.configs.smna_table3 import get_config
    from experiments.smgg import chip_distance_fn
    from experiments.smna_table3 import run
    from jaxpriv.data.map_shards import write_npz_atomic
    from jaxpriv.faces import chips_from_aligned_crops
    from jaxpriv.recognizers import load_recognizer
    from jaxpriv.smna import smgg
    from jaxpriv.smna.sensitivity import to_smna_image

    root = tmp_path_factory.mktemp("table3")
    rec = load_recognizer("dlib_resnet")
    rng = np.random.default_rng(0)
    for split, names, per in (("test", ["Hugh_Laurie"], 3), ("train", ["Tom_Hanks"], 2)):
        files = [f for n in names for f in sorted((GLINT / n).iterdir())[: per + 1]]
        chips = chips_from_aligned_crops(
            np.stack([np.asarray(Image.open(f).convert("RGB")) for f in files]))
        ref = np.repeat(rec.embed(chips[:1]), per, 0)
        images = to_smna_image(chips[1:])
        d0 = np.asarray(chip_distance_fn("dlib_resnet")(images.astype(np.float32), ref))
        (root / split).mkdir()
        write_npz_atomic(root / split / "shard-00000.npz", {
            "image": images, "identity": np.zeros(per, np.int32),
            "identity_name": np.asarray(names * per, str),
            "filename": np.asarray([f"{f.parent.name}/{f.name}" for f in files[1:]], str),
            "map_black": rng.standard_normal((per, 64, 64)).astype(np.float32),
            "map_white": rng.standard_normal((per, 64, 64)).astype(np.float32),
            "clean_distance": d0.astype(np.float32), "reference_embedding": ref})
    (root / "manifest.json").write_text("{}")
    variables = smgg.generator_variables(smgg.init(jax.random.key(0), 0.125, 0.125))
    for noise in ("black", "white"):
        smgg.save_generator(root / f"smgg_{noise}", variables["params"],
                            variables["batch_stats"],
                            {"noise": noise, "width": 0.125, "map_normalization": "alg3"})
    config = get_config()
    config.maps_path = str(root)
    config.checkpoint = str(root / "smgg_{noise}")
    config.noise_levels = LEVELS
    config.out_md, config.out_json, config.out_png = (str(root / "out" / f"t3.{e}")
                                                      for e in ("md", "json", "png"))
    return run(config, root / "workdir"), root


def test_every_cell_with_controls_and_budgets(table) -> None:
    from experiments.smna_table3 import MAPS

    result, root = table
    cells = {(c["noise"], c["noise_level"], c["map"]): c for c in result["cells"]}
    assert set(cells) == {(n, lv, m) for n in ("black", "white") for lv in LEVELS for m in MAPS}
    for (noise, level, name), c in cells.items():
        assert 0 < c["d"] < 2 and 0 <= c["same_person"] <= 1 and -1 <= c["ssim"] <= 1
        if name == "random, same L1":
            assert c["l1"] == pytest.approx(cells[(noise, level, "G(x)")]["l1"], rel=1e-4)
        else:
            assert c["l2"] == pytest.approx(level, rel=1e-4), (noise, level, name)
        assert c["ssim"] < 1.0
    for noise in ("black", "white"):  # more noise, less similar
        assert cells[(noise, 1250.0, "y")]["ssim"] < cells[(noise, 500.0, "y")]["ssim"]
    assert result["heldout_identities"] == ["Hugh_Laurie"] and result["train_maps"] == 2
    md = (root / "out" / "t3.md").read_text()  # results_io made the new folder
    assert "**Clean**" in md and "| 1250 |" in md and "random, same L1" in md
    written = json.loads((root / "out" / "t3.json").read_text())
    assert written["cells"] == result["cells"]
    committed = json.loads((ROOT / "experiments" / "results" / "smna_table3.json").read_text())
    assert set(written) == set(committed) and set(written["cells"][0]) == set(
        committed["cells"][0])
    assert (root / "out" / "t3.png").stat().st_size > 10_000


def test_wrong_stored_clean_distance_is_refused(table, tmp_path) -> None:
    import shutil

    from experiments.configs.smna_table3 import get_config
    from experiments.smna_table3 import run

    _, root = table
    shutil.copytree(root, tmp_path / "m")
    shard = tmp_path / "m" / "test" / "shard-00000.npz"
    data = dict(np.load(shard))
    data["clean_distance"] = data["clean_distance"] + 0.1
    np.savez(shard, **data)
    config = get_config()
    config.maps_path = str(tmp_path / "m")
    with pytest.raises(RuntimeError, match="clean distance"):
        run(config, tmp_path / "workdir")
