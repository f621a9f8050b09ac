"""Synthetic pages: reproducibility, sizes, upright text, fonts and their split, fallbacks, errors."""

import json
import os
import shutil
import sys

import cv2
import numpy as np
import pytest

pytest.importorskip("PIL")

from stntool import pages  # noqa: E402
from stntool.errors import BackendUnavailableError, InvalidArgumentError  # noqa: E402
from stntool.pages import FontFace  # noqa: E402

SMALL = (320, 240)


def ink_of(img):
    """Ink strength: distance from the paper level (the median), so it works for both polarities."""
    g = img.astype(np.float64)
    return np.abs(g - np.median(g))


def row_profile_score(img, angle_deg=0.0):
    """Variance of the row sums of the ink after rotating by ``angle_deg`` about the centre."""
    ink = ink_of(img).astype(np.float32)
    h, w = ink.shape
    if angle_deg:
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle_deg, 1.0)
        ink = cv2.warpAffine(ink, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)
    return float(ink.sum(axis=1).var())


# ------------------------------------------------------------------------------------ reproducibility

def test_same_seed_same_bytes_and_different_seeds_differ():
    a = pages.render_page(11, size=SMALL)
    b = pages.render_page(11, size=SMALL)
    c = pages.render_page(12, size=SMALL)
    assert a.tobytes() == b.tobytes()
    assert a.shape == c.shape and not np.array_equal(a, c)
    assert not np.array_equal(pages.render_page((11, 0), size=SMALL), a)


def test_synthetic_pages_are_individually_reproducible():
    got = list(pages.synthetic_pages(3, 5, size=SMALL))
    assert len(got) == 3
    for i, img in enumerate(got):
        assert np.array_equal(img, pages.render_page((5, i), size=SMALL))
    assert not np.array_equal(got[0], got[1])
    assert list(pages.synthetic_pages(0, 5)) == []


def test_layout_does_not_depend_on_colour_or_degradation_switch():
    grey = pages.render_page(3, size=SMALL, degrade=False)
    bgr = pages.render_page(3, size=SMALL, degrade=False, colour=True)
    assert np.array_equal(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), grey)
    # degradations come from their own streams: the clean page of a degraded seed is the same layout
    page = pages.make_page(3, size=SMALL)
    clean = pages.make_page(3, size=SMALL, degrade=False)
    assert (page.kind, page.fonts, page.light_on_dark, page.body_px) == \
        (clean.kind, clean.fonts, clean.light_on_dark, clean.body_px)


def test_a_page_replays_from_its_record():
    photos = 0
    for i in range(6):
        page = pages.make_page((4, i), colour=i % 2 == 0)
        rec = page.to_record()
        photos += "photo" in rec["degradations"]
        again = pages.make_page(tuple(rec["seed"]), size=rec["size"], kind=rec["kind"], split=rec["split"],
                                colour=rec["colour"], degrade=rec["degrade"])
        assert np.array_equal(again.image, page.image)
        assert again.to_record() == rec
    assert photos  # a page in a photo replays too


# ------------------------------------------------------------------------------------ sizes and records

@pytest.mark.parametrize("kind", pages.LAYOUT_KINDS)
def test_every_layout_renders_at_a_given_size(kind):
    grey = pages.render_page(2, size=(300, 210), kind=kind, split="all")
    bgr = pages.render_page(2, size=(300, 210), kind=kind, split="all", colour=True)
    assert grey.shape == (300, 210) and grey.dtype == np.uint8
    assert bgr.shape == (300, 210, 3) and bgr.dtype == np.uint8
    clean = pages.render_page(2, size=(300, 210), kind=kind, split="all", degrade=False)
    assert (ink_of(clean) > 60).mean() > 0.01  # something is drawn


@pytest.mark.parametrize("size", [(32, 32), (40, 900), (900, 40)])
def test_extreme_sizes_render(size):
    for i, kind in enumerate(pages.LAYOUT_KINDS):
        img = pages.render_page((8, i), size=size, kind=kind, split="all", colour=i % 2 == 0)
        assert img.shape[:2] == size and img.dtype == np.uint8


def test_default_sizes_and_page_boxes():
    for i in range(6):
        page = pages.make_page((1, i))
        h, w = page.image.shape
        assert 400 <= max(h, w) <= 1400 and min(h, w) >= 150
        x0, y0, x1, y1 = page.page_box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        if "photo" in page.degradations:
            assert (x1 - x0) * (y1 - y0) < h * w
        else:
            assert page.page_box == (0, 0, w, h)
        json.dumps(page.to_record())
    clean = pages.make_page(4, degrade=False)
    assert clean.page_box == (0, 0, clean.image.shape[1], clean.image.shape[0]) and clean.degradations == {}


def test_degradations_are_drawn_and_recorded():
    seen = set()
    for i in range(40):
        seen |= set(pages.make_page((9, i), size=(160, 120)).degradations)
    assert {"ink_bleed", "paper_texture", "photo", "lighting", "noise", "jpeg"} <= seen
    assert {"blur", "resample"} & seen


# ------------------------------------------------------------------------------------ content

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_text_lines_are_horizontal(seed):
    img = pages.render_page(seed, kind="book", degrade=False)
    h, w = img.shape
    # the row profile of text oscillates (lines and gaps); the column profile of the same block does not
    core = ink_of(img)[h // 5: 4 * h // 5, w // 4: 3 * w // 4]
    assert core.mean(axis=1).var() > 5 * core.mean(axis=0).var()
    # projection-profile deskew oracle: the row profile is sharpest unrotated
    s0 = row_profile_score(img)
    for angle in (-3.0, -1.0, 1.0, 3.0):
        assert s0 > 1.2 * row_profile_score(img, angle), angle


def test_text_has_many_lines():
    img = pages.render_page(5, kind="article", degrade=False)
    rows = ink_of(img).sum(axis=1) > 0
    starts = np.flatnonzero(rows[1:] & ~rows[:-1])
    assert len(starts) >= 15


def test_light_on_dark_pages_exist():
    polarities = {}
    for i in range(12):
        page = pages.make_page((2, i), kind="slide", degrade=False, size=(150, 200))
        polarities[page.light_on_dark] = np.median(page.image)
    assert set(polarities) == {True, False}
    assert polarities[True] < 100 < 150 < polarities[False]


def test_heldout_layouts_only_in_heldout():
    rng = np.random.default_rng(0)
    train = {pages._choose_kind(rng, "train", None) for _ in range(400)}
    held = {pages._choose_kind(rng, "heldout", None) for _ in range(400)}
    assert not train & set(pages.HELDOUT_LAYOUTS)
    assert set(pages.HELDOUT_LAYOUTS) <= held and train <= held


# ------------------------------------------------------------------------------------ fonts

def test_font_split_is_disjoint_and_by_family():
    faces = [FontFace("C059", "Roman", "/f/a.otf"), FontFace("Nimbus Roman", "Regular", "/f/b.otf"),
             FontFace("DejaVu Serif Condensed", "Regular", "/f/c.ttf"), FontFace("DejaVu Serif", "Book", "/f/d.ttf"),
             FontFace("Liberation Serif", "Bold", "/f/e.ttf")]
    train = pages.font_split(faces, "train")
    held = pages.font_split(faces, "heldout")
    assert {f.family for f in train} == {"Nimbus Roman", "DejaVu Serif"}
    assert {f.family for f in held} == {"C059", "DejaVu Serif Condensed", "Liberation Serif"}
    assert pages.font_split(faces, "all") == sorted(faces)
    with pytest.raises(InvalidArgumentError, match="split"):
        pages.font_split(faces, "test")


def test_found_fonts_are_loadable_text_fonts_and_split_disjoint():
    fonts = pages.find_fonts()
    if not fonts:
        pytest.skip("no font files on this machine")
    assert fonts == sorted(fonts)
    for f in fonts:
        assert os.path.isfile(f.path)
        assert not pages._EXCLUDED.search(f.family)
    keys = [(f.family.lower(), f.style.lower()) for f in fonts]
    assert len(keys) == len(set(keys))  # one file per face, whatever the formats on disk
    train, held = pages.font_split(fonts, "train"), pages.font_split(fonts, "heldout")
    assert {f.family for f in train}.isdisjoint({f.family for f in held})
    assert sorted(train + held) == fonts


def test_extra_font_dirs_and_junk_files(tmp_path, monkeypatch):
    src = next((f.path for f in pages.find_fonts() if f.path.lower().endswith((".ttf", ".otf"))), None)
    if src is None:
        pytest.skip("no TrueType/OpenType font on this machine")
    (tmp_path / "sub").mkdir()
    shutil.copy(src, tmp_path / "sub" / "Copied.ttf")
    (tmp_path / "junk.ttf").write_bytes(b"not a font")
    monkeypatch.setenv("STNTOOL_FONT_DIRS", str(tmp_path))
    monkeypatch.setattr(pages, "FONT_DIRS", ())
    found = pages.find_fonts()
    assert [os.path.basename(f.path) for f in found] == ["Copied.ttf"]
    monkeypatch.delenv("STNTOOL_FONT_DIRS")
    assert pages.find_fonts() == []
    assert [os.path.basename(f.path) for f in pages.find_fonts([tmp_path])] == ["Copied.ttf"]


def test_symbol_fonts_and_widths(monkeypatch):
    symbol = [p for p in ("/usr/share/fonts/opentype/urw-base35/StandardSymbolsPS.otf",
                          "/usr/share/fonts/opentype/urw-base35/D050000L.otf") if os.path.exists(p)]
    condensed = "/usr/share/fonts/truetype/dejavu/DejaVuSerifCondensed.ttf"
    if not symbol or not os.path.exists(condensed):
        pytest.skip("the URW base-35 and DejaVu fonts are not installed")
    for p in symbol:
        assert pages._face_from_file(p) is None
    face = pages._face_from_file(condensed)
    assert face.family == "DejaVu Serif Condensed" and face.style == "Regular"
    assert face.family.lower() in pages.HELDOUT_FAMILIES


def test_builtin_font_when_no_fonts_are_found(monkeypatch):
    monkeypatch.setattr(pages, "find_fonts", lambda extra_dirs=(): [])
    page = pages.make_page(4, kind="article", degrade=False)
    assert page.fonts == ("Pillow built-in",)
    assert (ink_of(page.image) > 60).mean() > 0.01
    assert pages.render_page(4, size=SMALL, split="heldout").shape == SMALL


def test_explicit_fonts_are_used_as_given():
    fonts = pages.find_fonts()
    held = pages.font_split(fonts, "heldout")
    if not held:
        pytest.skip("no held-out families on this machine")
    page = pages.make_page(6, fonts=held, split="train", degrade=False, kind="article")
    assert set(page.fonts) <= {f.family for f in held}
    with pytest.raises(InvalidArgumentError, match="FontFace"):
        pages.render_page(6, fonts=["/some/font.ttf"])


# ------------------------------------------------------------------------------------ errors

def test_missing_pillow_says_how_to_install(monkeypatch):
    for name in ("PIL", "PIL.Image", "PIL.ImageDraw", "PIL.ImageFont"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'stntool\[train\]'"):
        pages.render_page(0)
    with pytest.raises(BackendUnavailableError, match="Pillow"):
        pages.find_fonts()


@pytest.mark.parametrize("kwargs,match", [
    (dict(seed=-1), "seed"), (dict(seed="abc"), "seed"), (dict(seed=True), "seed"), (dict(seed=()), "seed"),
    (dict(seed=0, size=(10, 10)), "size"), (dict(seed=0, size="big"), "size"),
    (dict(seed=0, split="test"), "split"), (dict(seed=0, kind="poster"), "kind"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        pages.render_page(**kwargs)


def test_bad_count():
    with pytest.raises(InvalidArgumentError, match="n must"):
        list(pages.synthetic_pages(-1, 0))


def test_importing_stntool_does_not_import_pillow():
    import subprocess

    code = "import sys, stntool, stntool.pages; print('PIL' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
