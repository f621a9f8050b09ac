"""A photo's ICC colour profile goes with its pixels to every output that can hold it."""

import io
import json

import numpy as np
import pytest

from cli_helpers import SHIFT

Image = pytest.importorskip("PIL.Image")


def _profile(space=b"RGB "):
    p = bytearray(np.random.default_rng(5).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    p[16:20] = space
    return bytes(p)


def _profile_of(path):
    im = Image.open(path)
    im.load()
    return im.info.get("icc_profile")


def test_outputs_keep_the_inputs_colour_profile_where_it_describes_them(tmp_path, run, cli_run):
    # outputs had none: a wide-gamut photo (Display P3, Adobe RGB) came back with its colours read as sRGB
    src = tmp_path / "in"
    src.mkdir()
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    p3, cmyk = _profile(), _profile(b"CMYK")
    Image.fromarray(rgb).save(src / "photo.jpg", quality=90, icc_profile=p3)
    Image.fromarray(rgb).save(src / "chart.png", icc_profile=p3)
    Image.fromarray(rgb).convert("CMYK").save(src / "print.jpg", quality=90, icc_profile=cmyk)  # decoded as BGR
    Image.fromarray(rgb).save(src / "plain.png")
    for fmt in ("same", "png", "jpg", "webp"):
        out = tmp_path / f"o_{fmt}"
        r = run("--theta", SHIFT, str(src), "-o", str(out), "--format", fmt, "--manifest", str(tmp_path / "m.jsonl"),
                "--overwrite", "-q")
        assert r.exit_code == 0, r.stderr
        ext = {"same": None, "png": ".png", "jpg": ".jpg", "webp": ".webp"}[fmt]
        for name, want in (("photo.jpg", p3), ("chart.png", p3), ("print.jpg", None), ("plain.png", None)):
            path = out / (name if ext is None else name.rsplit(".", 1)[0] + ext)
            assert _profile_of(path) == want, (fmt, name)
    # the replay reads the same inputs: the same bytes, profiles included
    r = run("--params", str(tmp_path / "m.jsonl"), "-o", str(tmp_path / "replay"), "--format", "webp", "-q")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "replay" / "photo.webp").read_bytes() == (tmp_path / "o_webp" / "photo.webp").read_bytes()
    # augment and stdout too
    r = cli_run("augment", str(src / "photo.jpg"), "-o", str(tmp_path / "aug"), "--count", "2", "--rotate", "5",
                "--seed", "1", "-q")
    assert r.exit_code == 0 and _profile_of(tmp_path / "aug" / "photo_001.jpg") == p3
    r = run("--theta", SHIFT, "-", "-o", "-", input=(src / "chart.png").read_bytes())
    assert r.exit_code == 0 and Image.open(io.BytesIO(r.stdout_bytes)).info.get("icc_profile") == p3
    assert json.loads((tmp_path / "m.jsonl").read_text().splitlines()[0])["status"] == "ok"
