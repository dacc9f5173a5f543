"""Throughput of reversible mask protection: protect + restore, images/s, measured in one run.

Cases, interleaved round by round so load from other processes hits them alike:

* in memory: ``protect_image`` (the template network, the pad steered against the default
  superposition dlib_resnet + sface) then ``restore_image`` (XOR with the pad) on a 112×112
  glint crop (1 face) and on ``two_people.jpg`` (2 faces);
* files: ``protect_file`` (decode, detect, scrypt, protect, self-check, PNG + key file) then
  ``restore_file`` (scrypt, decode, XOR, hashes, PNG) on ``two_people.jpg``;
* restore only: ``restore_file`` of that file (no network: scrypt, decode, XOR, hashes, PNG).

Every round checks that the restored pixels equal the original. Ratios are to the in-memory
two-people case of the same run.

    python benchmarks/mask.py [--repeats 3] [--bits 4] [--json experiments/results/mask_bench.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from jaxpriv.machine import machine_facts, usable_cpus

ROOT = Path(__file__).resolve().parents[1]
GLINT = ROOT.parent / "shared" / "data" / "faces" / "glint"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--bits", type=int, default=None, help="default: the mask's default k")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)

    import jax

    import jaxpriv
    from jaxpriv.faces import aligned_crop_face, detect_faces
    from jaxpriv.io import load_image
    from jaxpriv.masktpl import keys as K
    from jaxpriv.masktpl.model import load_model
    from jaxpriv.masktpl.steer import Steering
    from jaxpriv.masktpl.xor import (
        DEFAULT_BITS,
        protect_file,
        protect_image,
        restore_file,
        restore_image,
    )

    args.bits = DEFAULT_BITS if args.bits is None else args.bits

    facts = machine_facts()
    sys_info = {"cpu": facts["cpu_model"], "os_cpu_count": facts["os_cpu_count"],
                "usable_cpus": usable_cpus(),
                "loadavg_start": [round(v, 2) for v in facts["loadavg_start"]],
                "python": platform.python_version(), "jax": jax.__version__,
                "devices": [str(d) for d in jax.devices()], "bits": args.bits}
    steering = Steering()
    sys_info["steering"] = dataclasses.asdict(steering)  # every field, defaults included
    model = load_model()
    photo_path = Path(jaxpriv.__file__).parent / "samples" / "two_people.jpg"
    photo = load_image(photo_path)
    photo_faces = detect_faces(photo)
    if GLINT.is_dir():
        crop = load_image(min(min(d for d in GLINT.iterdir() if d.is_dir()).glob("*.png")))
        crop_faces = [aligned_crop_face(crop)]
    else:  # no shared data: a crop of the sample photo
        crop, crop_faces = photo[:112, :112].copy(), []
    kdf = K.KdfParams()
    key = K.prng_key(K.derive_keys(b"bench", b"0" * 16, kdf).secret)
    k = args.bits
    tmp = Path(tempfile.mkdtemp(prefix="mask_bench_"))
    counter = iter(range(10**6))
    sizes: list[int] = []

    def in_memory(image: np.ndarray, faces: list) -> None:  # noqa: ANN001
        prot, pad = protect_image(image, faces, key, k, model, steering)
        back = restore_image(prot, pad)
        assert np.array_equal(back, image)

    def files() -> None:
        i = next(counter)
        res = protect_file(photo_path, tmp / f"p{i}.png", b"bench", k, model, kdf,
                           steering=steering)
        out = restore_file(res.output, tmp / f"r{i}.png", b"bench")
        assert np.array_equal(load_image(out), photo)
        sizes.append(res.key_file.stat().st_size)

    def restore_only() -> None:
        i = next(counter)
        out = restore_file(tmp / "p0.png", tmp / f"r{i}.png", b"bench")
        assert np.array_equal(load_image(out), photo)

    cases = [
        (f"in memory, glint crop {crop.shape[1]}x{crop.shape[0]} ({len(crop_faces)} face)",
         lambda: in_memory(crop, crop_faces)),
        (f"in memory, two_people.jpg {photo.shape[1]}x{photo.shape[0]} "
         f"({len(photo_faces)} faces)", lambda: in_memory(photo, photo_faces)),
        ("files (PNG + key file, scrypt 2^15), two_people.jpg", files),
        ("restore only (file, scrypt 2^15), two_people.jpg", restore_only),
    ]
    seconds: dict[str, list[float]] = {name: [] for name, _ in cases}
    cpu: dict[str, list[float]] = {name: [] for name, _ in cases}
    try:
        for _, fn in cases:  # warm-up: compiles
            fn()
        for _ in range(args.repeats):
            for name, fn in cases:
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                seconds[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys_info["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    base = 1.0 / statistics.median(seconds[cases[1][0]])
    print(f"CPU: {sys_info['cpu']}  os.cpu_count()={sys_info['os_cpu_count']}  "
          f"usable={sys_info['usable_cpus']}  jax {sys_info['jax']} {sys_info['devices']}")
    print(f"load average start {sys_info['loadavg_start']}  end {sys_info['loadavg_end']}  "
          f"(machine shared with other jobs)")
    print(f"k = {k} bits; {args.repeats} interleaved rounds, median; one image = protect + "
          "restore, checked exact\n")
    print(f"{'case':<62} {'images/s':>9} {'s/image':>8} {'cpu s':>6} {'ratio':>6}")
    rows = []
    for name, _ in cases:
        med = statistics.median(seconds[name])
        row = {"case": name, "images_per_s": 1 / med, "seconds": seconds[name],
               "cpu_seconds": cpu[name], "ratio_vs_in_memory_two_people": (1 / med) / base}
        rows.append(row)
        print(f"{name:<62} {1 / med:>9.2f} {med:>8.3f} {statistics.median(cpu[name]):>6.2f} "
              f"{row['ratio_vs_in_memory_two_people']:>5.2f}x")
    print(f"key file of two_people.jpg: {statistics.median(sizes):.0f} bytes "
          f"({statistics.median(sizes) / len(photo_faces):.0f} per face)")
    if args.json:
        args.json.write_text(json.dumps({"machine": sys_info, "rows": rows,
                                         "key_file_bytes_two_people": sizes},
                                        indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
