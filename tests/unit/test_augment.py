"""The augmentation sampler: records, ranges, seeds, keep-inside, the batch call, elastic fields."""

import hashlib
import math
import os

import numpy as np
import pytest

from stntool import maps
from stntool.augment import PRESETS, Augmenter, parse_range, variant_rng
from stntool.errors import InvalidArgumentError
from stntool.records import Elastic, WarpSpec, apply_spec
from stntool.transforms import pixel_map_from_theta


def rgb(h=36, w=52, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def pixel_map(spec, in_hw):
    return pixel_map_from_theta(np.array(spec.theta), in_hw, spec.out_hw, spec.align_corners)


def test_identity_ranges_give_identity_outputs():
    img = rgb()
    for mode in ("nearest", "bilinear", "bicubic"):
        res = Augmenter(mode=mode)(img, np.random.default_rng(1), backend="numpy")
        assert np.array_equal(res.image, img)
        assert res.spec.theta == ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))


@pytest.mark.parametrize("k,expected", [(1, np.rot90), (2, lambda a: a[::-1, ::-1]), (3, lambda a: np.rot90(a, 3))])
def test_fixed_quarter_turns_and_flips_are_exact(k, expected):
    img = rgb(24, 24)
    res = Augmenter(rotate=90 * k, mode="nearest")(img, np.random.default_rng(0), backend="numpy")
    assert np.array_equal(res.image, expected(img))  # counter-clockwise as displayed, like np.rot90
    res = Augmenter(hflip=1.0, mode="nearest")(rgb(), np.random.default_rng(0), backend="numpy")
    assert np.array_equal(res.image, rgb()[:, ::-1])
    res = Augmenter(vflip=1.0, mode="nearest")(rgb(), np.random.default_rng(0), backend="numpy")
    assert np.array_equal(res.image, rgb()[::-1])


@pytest.mark.parametrize("in_hw,out_hw", [((30, 80), None), ((80, 30), (50, 50)), ((40, 60), (40, 60))])
def test_rotation_is_a_rotation_in_pixels_on_non_square_images(in_hw, out_hw):
    """A rotation in normalized coordinates would be a rotation plus a shear/stretch in pixels."""
    aug = Augmenter(rotate=(-40, 40))
    for i in range(10):
        spec = aug.sample(variant_rng(0, "x", i), in_hw, out_hw)
        m = np.linalg.inv(pixel_map(spec, in_hw))  # out_pix_from_in_pix
        o_hw = out_hw or in_hw
        stretch = np.diag([in_hw[1] / o_hw[1], in_hw[0] / o_hw[0]])  # the input extent onto the output's
        lin = m[:2, :2] @ stretch
        assert np.allclose(lin.T @ lin, np.eye(2), atol=1e-12) and np.linalg.det(lin) > 0
        centre_in = [(in_hw[1] - 1) / 2, (in_hw[0] - 1) / 2, 1]
        assert np.allclose((m @ centre_in)[:2], [(o_hw[1] - 1) / 2, (o_hw[0] - 1) / 2])


def test_parameters_stay_in_their_ranges_and_cover_them():
    """Angle, scale and shift recovered from the records of 4000 draws: inside the ranges, roughly uniform."""
    hw = (50, 70)
    aug = Augmenter(rotate=(-30, 10), scale=(0.8, 1.25), translate=0.1)
    rng = np.random.default_rng(1234)
    angles, scales, shifts = [], [], []
    for _ in range(4000):
        m = np.linalg.inv(pixel_map(aug.sample(rng, hw), hw))
        angles.append(math.degrees(math.atan2(-m[1, 0], m[0, 0])))
        scales.append(math.sqrt(abs(np.linalg.det(m[:2, :2]))))
        c = m @ [(hw[1] - 1) / 2, (hw[0] - 1) / 2, 1]
        shifts.append(((c[0] - (hw[1] - 1) / 2) / hw[1], (c[1] - (hw[0] - 1) / 2) / hw[0]))
    angles, scales, shifts = np.array(angles), np.array(scales), np.array(shifts)
    for values, lo, hi in ((angles, -30, 10), (scales, 0.8, 1.25), (shifts[:, 0], -0.1, 0.1), (shifts[:, 1], -0.1, 0.1)):
        assert values.min() >= lo - 1e-9 and values.max() <= hi + 1e-9
        assert values.min() < lo + 0.01 * (hi - lo) and values.max() > hi - 0.01 * (hi - lo)
        counts, _ = np.histogram(values, bins=10, range=(lo, hi))
        assert counts.min() > 320 and counts.max() < 480  # uniform: 400 each, 5 sigma is about 95


def test_flip_probabilities_and_independent_draw_positions():
    rng = np.random.default_rng(7)
    aug = Augmenter(hflip=0.3)
    flips = [aug.sample(rng, (20, 20)).theta[0][0] < 0 for _ in range(4000)]
    assert abs(np.mean(flips) - 0.3) < 0.03
    # narrowing one range does not change the other amounts drawn from the same stream
    a = Augmenter(rotate=(-20, 20), scale=(0.9, 1.1)).sample(variant_rng(3, "k", 0), (40, 40))
    b = Augmenter(rotate=(-20, 20), scale=(1.0, 1.0)).sample(variant_rng(3, "k", 0), (40, 40))
    ang = [math.atan2(-np.linalg.inv(pixel_map(s, (40, 40)))[1, 0], np.linalg.inv(pixel_map(s, (40, 40)))[0, 0])
           for s in (a, b)]
    assert ang[0] == pytest.approx(ang[1], abs=1e-12)


def test_variant_rng_depends_only_on_seed_key_and_index():
    draw = lambda *a: variant_rng(*a).random(4).tolist()  # noqa: E731
    assert draw(5, "sub/a.png", 2) == draw(5, "sub/a.png", 2)
    values = {tuple(draw(*a)) for a in [(5, "sub/a.png", 2), (6, "sub/a.png", 2), (5, "sub/b.png", 2),
                                        (5, "sub/a.png", 3)]}
    assert len(values) == 4
    with pytest.raises(InvalidArgumentError):
        variant_rng(-1, "a", 0)
    for index in (-1, 2.7, "x", None, True):  # not cut, parsed or left to NumPy's message
        with pytest.raises(InvalidArgumentError, match="variant index must be an integer >= 0"):
            variant_rng(3, "a", index)
    assert draw(3, "a", np.int64(2)) == draw(3, "a", np.array(2)) == draw(3, "a", 2)


def test_seeded_stream_is_pinned():
    """The stability promise: these numbers stay unless the changelog says otherwise."""
    spec = Augmenter(rotate=(-10, 10), scale=(0.9, 1.1)).sample(variant_rng(42, "photo.jpg", 0), (100, 100))
    expected = variant_rng(42, "photo.jpg", 0).random(2)
    ang = -10 + 20 * expected[0]
    sc = 0.9 + 0.2 * expected[1]
    m = np.linalg.inv(pixel_map(spec, (100, 100)))
    assert math.degrees(math.atan2(-m[1, 0], m[0, 0])) == pytest.approx(ang, abs=1e-9)
    assert math.sqrt(np.linalg.det(m[:2, :2])) == pytest.approx(sc, abs=1e-12)
    assert variant_rng(42, "photo.jpg", 0).random(3).tolist() == [0.575838651928818, 0.2183864637918056,
                                                                 0.07616859634557249]


def test_variant_rng_of_a_name_that_is_not_utf8_hashes_the_names_bytes():
    """A file name with bytes that are not UTF-8 (lone surrogates from os.fsdecode) seeds from its own bytes."""

    raw = b"sub/x\xff\xfey.png"
    key = os.fsdecode(raw) if os.name != "nt" else raw.decode("utf-8", "surrogateescape")
    digest = hashlib.blake2b(raw, digest_size=16).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    want = np.random.Generator(np.random.PCG64(np.random.SeedSequence([7, 1, *words]))).random(3).tolist()
    assert variant_rng(7, key, 1).random(3).tolist() == want
    # other lone surrogates (from Python only) give a stream of their own, not an error
    assert variant_rng(7, "a\ud800", 1).random(3).tolist() != variant_rng(7, "a", 1).random(3).tolist()


@pytest.mark.parametrize("kw", [dict(rotate=(-30, 30), translate=0.15, scale=(0.8, 1.2)),
                                dict(rotate=(-20, 20), perspective=0.08, shear=(-10, 10)),
                                dict(rotate=(-10, 10), tps=0.03),
                                dict(rotate=(-10, 10), elastic=(40, 8))])
def test_keep_inside_shows_no_padding(kw):
    img = np.ones((60, 80), np.float32)
    aug = Augmenter(keep_inside=True, **kw)
    loose = Augmenter(**kw)
    leaks = 0
    for i in range(12):
        spec = aug.sample(variant_rng(5, "a", i), img.shape, (50, 45))
        out = apply_spec(img, spec, "numpy")
        assert out.min() > 1 - 1e-4  # TPS warps read their spline within 0.01 px
        leaks += apply_spec(img, loose.sample(variant_rng(5, "a", i), img.shape, (50, 45)), "numpy").min() < 0.99
    assert leaks >= 6  # the same draws without keep_inside do show padding


@pytest.mark.parametrize("kw", [dict(rotate=(-30, 30), translate=0.15, scale=(0.8, 1.2)),
                                dict(rotate=(-20, 20), perspective=0.08, shear=(-10, 10)),
                                dict(rotate=(-10, 10), tps=0.03),
                                dict(rotate=(-10, 10), elastic=(40, 8))])
def test_keep_inside_shows_no_padding_to_bicubic_taps_either(kw):
    # bicubic reads a pixel beyond the cell bilinear reads: with reads kept to the pixel centres only, edge
    # pixels changed by up to 50 grey levels with the fill colour
    img = np.random.default_rng(0).random((60, 80)).astype(np.float32)
    aug = Augmenter(keep_inside=True, mode="bicubic", padding="constant", fill=0.0, **kw)
    loose = Augmenter(mode="bicubic", padding="constant", fill=0.0, **kw)
    leaks = 0
    for i in range(8):
        for sampler, kept in ((aug, True), (loose, False)):
            spec = sampler.sample(variant_rng(5, "a", i), img.shape, (50, 45))
            differ = not np.array_equal(apply_spec(img, spec, "numpy"), apply_spec(img, spec.replace(fill=(1e6,)),
                                                                                   "numpy"))
            if kept:
                assert not differ, (kw, i)  # the fill has no weight anywhere
            else:
                leaks += differ
    assert leaks >= 4  # the same draws without keep_inside do show padding


def test_keep_inside_of_an_image_with_no_room_for_bicubic_taps_keeps_the_bilinear_margin():
    # on 3 px or less no read can keep bicubic's taps inside: every draw was kept as drawn, padding showing
    for hw in ((3, 3), (2, 5)):
        for i in range(6):
            rng = lambda: variant_rng(7, "tiny", i)  # noqa: E731
            cubic = Augmenter(rotate=(-20, 20), scale=(0.8, 1.1), keep_inside=True, mode="bicubic").sample(rng(), hw)
            linear = Augmenter(rotate=(-20, 20), scale=(0.8, 1.1), keep_inside=True).sample(rng(), hw)
            assert cubic.theta == linear.theta


def _least_room(spec, in_hw, out_hw):
    """How far inside the input's pixel centres the nearest read of any output pixel centre lies (negative:
    outside), with the record's spline evaluated exactly at every pixel."""
    ys, xs = np.meshgrid(np.arange(out_hw[0], dtype=float), np.arange(out_hw[1], dtype=float), indexing="ij")
    p = maps.in_from_out(spec, np.stack([xs.ravel(), ys.ravel()], -1), in_hw)
    return float(min(p.min(), in_hw[1] - 1 - p[:, 0].max(), in_hw[0] - 1 - p[:, 1].max()))


@pytest.mark.parametrize("kw", [dict(tps=0.15, tps_grid=6), dict(tps=0.12, tps_grid=8),
                                dict(tps=0.15, tps_grid=6, perspective=0.08, rotate=(-10, 10))])
def test_keep_inside_checks_the_folds_of_a_strong_spline(kw):
    """A spline that folds reads farther than its border does from pixels inside the output: every pixel keeps
    clear of the input's edge by the margin, and the zoom is the least that does (some pixel at the margin);
    checked on the border alone, some of the same draws read outside (up to tens of pixels)."""
    from unittest import mock

    from stntool import augment

    aug = Augmenter(keep_inside=True, **kw)
    in_hw, out_hw = (60, 80), (50, 70)
    leaks = tight = 0
    for i in range(20):
        room = _least_room(aug.sample(variant_rng(3, "f", i), in_hw, out_hw), in_hw, out_hw)
        assert room >= 0.01 - 1e-6
        tight += room < 0.01 + 1e-6
        with mock.patch.object(augment, "_fold_pixels", lambda spline, hw, values=(): np.zeros((0, 2))):
            leaks += _least_room(aug.sample(variant_rng(3, "f", i), in_hw, out_hw), in_hw, out_hw) < 0
    assert leaks >= 1 and tight >= 15


@pytest.mark.parametrize("kw, key, in_hw, out_hw", [
    (dict(tps=0.15, tps_grid=6), ("tps15g6", 34), (60, 80), (50, 70)),
    (dict(tps=0.15, tps_grid=5, align_corners=True, translate=0.2), ("tpsac", 23), (30, 45), (20, 60)),
    (dict(tps=0.45, tps_grid=8, perspective=0.1), ("f", 1211), (40, 114), (73, 75)),
    (dict(tps=0.25, tps_grid=6, perspective=0.3), ("f", 5380), (28, 115), (28, 115))])
def test_keep_inside_checks_folds_narrower_than_its_lattice_at_the_edge(kw, key, in_hw, out_hw):
    # (and below: folds of a record's spline under a strong perspective, chosen on the spline before it, read
    # 3.8-6.6 px outside)
    # a strip a pixel or two wide, just inside the border, turned over between the nodes of the fold lattice:
    # its pixels read 0.05-0.06 px outside the input
    seed = 7 if key[0] == "f" else 11
    spec = Augmenter(keep_inside=True, **kw).sample(variant_rng(seed, *key), in_hw, out_hw)
    assert _least_room(spec, in_hw, out_hw) >= 0.01 - 1e-6


def test_tps_record_reproduces_the_affine_part_and_moves_its_lattice():
    aug = Augmenter(rotate=(-10, 10), tps=0.04, tps_grid=3)
    spec = aug.sample(variant_rng(1, "t", 0), (40, 60))
    assert spec.tps is not None and len(spec.tps.src) == 9
    still = Augmenter(rotate=(-10, 10), tps=1e-12, tps_grid=3).sample(variant_rng(1, "t", 0), (40, 60))
    plain = Augmenter(rotate=(-10, 10)).sample(variant_rng(1, "t", 0), (40, 60))
    pts = np.array([[3.0, 4.0], [30.5, 20.25], [59.0, 39.0]])
    assert np.allclose(maps.in_from_out(still, pts, (40, 60)), maps.in_from_out(plain, pts, (40, 60)), atol=1e-6)
    dst, src = np.array(spec.tps.dst), np.array(spec.tps.src)
    assert np.allclose(maps.in_from_out(spec, dst, (40, 60)), src, atol=1e-9)  # the spline interpolates
    jitter = dst - np.array(still.tps.dst)
    assert np.all(np.abs(jitter) <= 0.04 * np.array([60, 40]) + 1e-9) and np.abs(jitter).max() > 0.2


def test_batch_call_equals_per_image_records():
    imgs = np.stack([rgb(seed=s) for s in range(6)])
    for aug in (Augmenter(rotate=(-20, 20), scale=(0.8, 1.2)), Augmenter(rotate=(-20, 20), perspective=0.05),
                Augmenter(rotate=(-5, 5), elastic=(10, 5)), Augmenter(tps=0.03, padding="constant", fill=(9, 8, 7))):
        out, specs = aug.batch(imgs, np.random.default_rng(3), backend="cpu")
        again = [aug.sample(r, imgs.shape[1:3]) for r in [np.random.default_rng(3)] for _ in range(6)]
        assert specs == again
        for i in range(6):
            assert np.array_equal(out[i], apply_spec(imgs[i], specs[i], "cpu"))
    with pytest.raises(InvalidArgumentError):
        Augmenter().batch(np.zeros((0, 4, 4), np.uint8), np.random.default_rng(0))


def test_batch_takes_every_fill_a_single_call_takes_and_gives_native_byte_order():
    # a single-number fill raised TypeError in batch (the raw setting reached the per-channel values), and a
    # big-endian batch came back big-endian from elastic records, native from affine ones
    imgs = np.stack([rgb(seed=s) for s in range(3)])
    for fill in (7, 7.0, np.float64(7), [7], (9, 8, 7), "#ff0000"):
        aug = Augmenter(rotate=(20, 30), fill=fill)
        out, specs = aug.batch(imgs, np.random.default_rng(5), backend="cpu")
        for i in range(3):
            assert np.array_equal(out[i], apply_spec(imgs[i], specs[i], "cpu")), fill
    assert np.array_equal(out[0, 0, 0], [0, 0, 255])  # a corner left for the fill
    with pytest.raises(InvalidArgumentError, match="outside the range"):
        Augmenter(rotate=30, fill=300).batch(imgs, np.random.default_rng(0))
    big = (imgs[..., 0].astype(np.uint16) * 257).astype(">u2")
    for aug in (Augmenter(rotate=(-5, 5)), Augmenter(rotate=(-5, 5), elastic=(10, 5))):
        out, specs = aug.batch(big, np.random.default_rng(2), backend="cpu")
        assert out.dtype == np.dtype(np.uint16) and out.dtype.isnative
        assert np.array_equal(out[1], apply_spec(big[1].astype(np.uint16), specs[1], "cpu"))


def test_batch_of_gray_images_and_of_mixed_records():
    gray = np.stack([rgb(seed=s)[..., 1] for s in range(5)])  # (N, H, W)
    for aug in (Augmenter(rotate=(-20, 20)), Augmenter(rotate=(-20, 20), tps=0.03)):
        out, specs = aug.batch(gray, np.random.default_rng(4), backend="cpu")
        assert out.shape == gray.shape and out.dtype == gray.dtype
        for i in range(5):
            assert np.array_equal(out[i], apply_spec(gray[i], specs[i], "cpu"))
    # some records affine, some projective, some splines: three groups written into one output
    class Mixed(Augmenter):
        def sample(self, rng, in_hw, out_hw=None):
            spec = super().sample(rng, in_hw, out_hw)
            k = int(rng.random() * 3)
            if k == 0:
                return spec.replace(theta=spec.theta[:2])
            if k == 1:
                return spec
            return Augmenter(tps=0.03).sample(rng, in_hw, out_hw)

    imgs = np.stack([rgb(seed=s) for s in range(9)]).astype(np.uint16) * 257
    out, specs = Mixed(rotate=(-20, 20), perspective=0.05).batch(imgs, np.random.default_rng(6), backend="cpu")
    kinds = [2 if s.tps is None and len(s.theta) == 2 else 3 if s.tps is None else 0 for s in specs]
    assert sorted(set(kinds)) == [0, 2, 3]
    for i in range(9):
        assert np.array_equal(out[i], apply_spec(imgs[i], specs[i], "cpu"))


def test_ranges_parse_and_reject():
    assert parse_range("-5:10", "--rotate") == (-5.0, 10.0)
    assert parse_range("7", "--rotate") == (7.0, 7.0)
    assert parse_range("0.1", "--translate", symmetric=True) == (-0.1, 0.1)
    for bad in ("5:1", "a:b", ":3", "1:2:3", "nan"):
        with pytest.raises(InvalidArgumentError):
            parse_range(bad, "--rotate")
    with pytest.raises(InvalidArgumentError, match="expected LO:HI with two numbers"):
        parse_range("1:2:3", "--rotate")
    for kw in (dict(scale=(0, 1)), dict(hflip=1.5), dict(perspective=0.7), dict(tps_grid=1), dict(elastic=(1, 0)),
               dict(shear=(-90, 0)), dict(mode="cubic"), dict(padding="constant", fill="#zz"),
               dict(keep_inside="no"), dict(keep_inside=None)):  # "no" turned it on
        with pytest.raises(InvalidArgumentError):
            Augmenter(**kw)


def test_presets_build_and_differ():
    for name in PRESETS:
        aug = Augmenter.from_preset(name)
        spec = aug.sample(np.random.default_rng(0), (64, 48))
        assert isinstance(spec, WarpSpec)
    assert Augmenter.from_preset("document").fill == "#ffffff"
    assert Augmenter.from_preset("light", rotate=(0, 0)).rotate == (0.0, 0.0)
    with pytest.raises(InvalidArgumentError):
        Augmenter.from_preset("extreme")
    # padding or fill replaces both, as on the command line (the preset's white fill refused border padding)
    border = Augmenter.from_preset("document", padding="border")
    assert border.padding == "border" and border.fill is None
    assert Augmenter.from_preset("document", padding="zeros").fill is None
    # a fill alone keeps constant padding in its colour (it was refused: a fill with zeros padding)
    black = Augmenter.from_preset("document", fill="#000000")
    assert black.padding == "constant" and black.fill == "#000000"
    assert Augmenter.from_preset("light", fill=3).padding == "constant"
    assert Augmenter(rotate=5, fill=0).padding == "constant" and Augmenter(rotate=5).padding == "zeros"
    with pytest.raises(InvalidArgumentError):  # a fill with another padding given is refused, as on the command line
        Augmenter(rotate=5, fill=0, padding="border")


def test_is_identity():
    assert Augmenter().is_identity and Augmenter(rotate=0, scale=1, keep_inside=True, mode="nearest").is_identity
    for kw in (dict(rotate=1), dict(scale=(1, 1.1)), dict(aspect=0.9), dict(shear=2), dict(shear_y=2),
               dict(translate=0.1), dict(hflip=0.5), dict(vflip=1), dict(perspective=0.1), dict(tps=0.1),
               dict(elastic=(1, 5))):
        assert not Augmenter(**kw).is_identity, kw
    assert all(not Augmenter.from_preset(name).is_identity for name in PRESETS)


def test_a_generator_is_asked_for_clearly():
    for rng in (None, 0, "seed"):  # an AttributeError said nothing of what was wanted
        with pytest.raises(InvalidArgumentError, match="rng must be a numpy.random.Generator"):
            Augmenter(rotate=5).sample(rng, (8, 8))
        with pytest.raises(InvalidArgumentError, match="rng must be a numpy.random.Generator"):
            Augmenter(rotate=5)(np.zeros((8, 8), np.uint8), rng)


def test_shears_that_fold_the_image_are_refused():
    """shear 45 and shear_y 45 made a singular map (θ entries of 4e15, an image of padding), wider ones mirrored
    variants: each shear alone was checked."""
    for shear, shear_y in ((45, 45), ((-50, 50), (-50, 50)), ((-44, 44), (-44, 44)), (60, 30)):
        with pytest.raises(InvalidArgumentError, match="together can fold the image"):
            Augmenter(shear=shear, shear_y=shear_y)
    assert Augmenter(shear=-60, shear_y=30).shear == (-60.0, -60.0)  # opposite signs widen: 1 + tan 60° tan 30° = 2
    aug = Augmenter(shear=(-40, 40), shear_y=(-40, 40))  # 1 - tan²40° = 0.30: kept
    for _ in range(200):
        spec = aug.sample(np.random.default_rng(_), (48, 64))
        lin = np.asarray(spec.theta)[:, :2]
        assert np.linalg.det(lin) > 0


def test_elastic_field_statistics_match_the_per_pixel_recipe():
    """Uniform noise smoothed by a Gaussian of sigma px, times alpha: std alpha/(2 sqrt(3 pi) sigma)."""
    for sigma in (1.0, 4.0, 12.0):
        std = np.mean([maps.elastic_displacement(Elastic(1.0, sigma, s), (400, 400))[1][4:-4, 4:-4].std()
                       for s in range(6)])
        assert std == pytest.approx(1.0 / (2.0 * math.sqrt(3.0 * math.pi) * sigma), rel=0.1)
    a = maps.elastic_displacement(Elastic(5.0, 6.0, 11), (50, 70))[1]
    assert np.array_equal(a, maps.elastic_displacement(Elastic(5.0, 6.0, 11), (50, 70))[1])
    assert not np.array_equal(a, maps.elastic_displacement(Elastic(5.0, 6.0, 12), (50, 70))[1])


@pytest.mark.parametrize("alpha, sigma, seed, digest", [
    (5.0, 6.0, 11, "cf40bd74851550dd"), (50.0, 6.0, 3, "bba7f0cd72824b9c"),
    (200.0, 20.0, 7, "e560bb8ab5d59c09"), (3.0, 1.0, 5, "32fad40a2b286058"),
])
def test_elastic_fields_keep_their_bits_across_versions(alpha, sigma, seed, digest):
    """Replaying an old manifest's elastic record redraws its field: the field's bits are part of the
    record format (a change needs a changelog entry and new digests)."""
    d = maps.elastic_displacement(Elastic(alpha, sigma, seed), (97, 130))[1]
    assert hashlib.sha256(d.tobytes()).hexdigest()[:16] == digest


def test_elastic_with_no_amplitude_is_its_base_warp():
    img = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    theta = ((0.9, 0.1, 0.05), (-0.1, 0.9, 0.0))
    base = WarpSpec(theta=theta, padding="border")
    flat = base.replace(elastic=Elastic(0.0, 6.0, 3))
    assert np.allclose(apply_spec(img, flat, "numpy"), apply_spec(img, base, "numpy"), atol=1e-5)
    moved = base.replace(elastic=Elastic(30.0, 6.0, 3))
    assert np.abs(apply_spec(img, moved, "numpy") - apply_spec(img, base, "numpy")).max() > 0.1
    for be in ("numpy", "cpu"):
        assert np.allclose(apply_spec(img, moved, be), apply_spec(img, moved, "numpy"), atol=1e-4)


def test_elastic_record_round_trip_and_schema():
    spec = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), elastic=Elastic(20, 5, 2**40 + 3), out_hw=(10, 12))
    rec = spec.to_record()
    assert rec["elastic"] == {"alpha": 20.0, "sigma": 5.0, "seed": 2**40 + 3} and rec["schema"] == 2
    assert WarpSpec.from_record(rec) == spec
    assert WarpSpec(theta=((1, 0, 0), (0, 1, 0))).to_record()["schema"] == 1
    for bad in ({"alpha": 1, "sigma": 0, "seed": 1}, {"alpha": 1, "sigma": 2, "seed": -1},
                {"alpha": 1, "sigma": 2, "seed": 2**53}, {"alpha": 1, "sigma": 2}, {"alpha": 1, "sigma": 2, "seed": 1.5}):
        with pytest.raises(InvalidArgumentError):
            WarpSpec.from_record({**rec, "elastic": bad})
    with pytest.raises(InvalidArgumentError):
        WarpSpec(elastic=Elastic(1, 1, 1))


def test_call_moves_keypoints_boxes_and_masks_with_the_record():
    from stntool import labels as lb

    img = rgb(40, 60)
    mask = np.zeros((40, 60), np.uint8)
    mask[10:20, 20:40] = 3
    kp = np.array([[10.0, 5.0], [30.5, 20.25]])
    boxes = np.array([[20.0, 10.0, 40.0, 20.0]])
    for aug in (Augmenter(rotate=(-20, 20), perspective=0.05), Augmenter(tps=0.04), Augmenter(elastic=(10, 5))):
        res = aug(img, np.random.default_rng(4), keypoints=kp, boxes=boxes, mask=mask, backend="numpy")
        moved, info = lb.transform_labels(lb.Labels(kp, boxes), res.spec, img.shape[:2])
        assert np.allclose(res.keypoints, moved.keypoints, equal_nan=True) and np.allclose(res.boxes, moved.boxes)
        assert np.array_equal(res.mask, lb.warp_mask(mask, res.spec, "numpy"))
        assert set(np.unique(res.mask)) <= {0, 3} and res.info["keypoints_visible"] >= 1
        back = maps.in_from_out(res.spec, res.keypoints[np.all(np.isfinite(res.keypoints), axis=1)], img.shape[:2])
        assert np.allclose(back, kp[np.all(np.isfinite(res.keypoints), axis=1)], atol=0.01)
    with pytest.raises(InvalidArgumentError):
        Augmenter()(img, np.random.default_rng(0), mask=np.zeros((41, 60), np.uint8))


@pytest.mark.parametrize("hw, step, sigma_nodes, threads", [
    ((176, 176), 3, 2.0, True), ((176, 176), 3, 2.5, False), ((13, 16), 1, 2.0, True), ((99, 132), 2, 1.0, True),
    ((40, 7), 5, 3.5, False), ((5, 5), 10, 2.0, True), ((1, 9), 2, 0.7, True), ((60, 9), 2, 2.5, False),
    ((3, 32), 2, 1.5, True), ((70, 33), 1, 2.0, False), ((31, 64), 2, 2.0, True)])
def test_noise_field_is_the_recipe_drawn_in_one_call(monkeypatch, hw, step, sigma_nodes, threads):
    """The compiled field draws each channel from its own generator (the second advanced past the first's
    draws) and smooths it, on two threads or one: the bits of one ``random((2, H, W))`` call, scaled to
    U(-1, 1) / step and smoothed by the numpy spec."""
    from stntool import _smoothing
    from stntool.sampling import _cpu

    monkeypatch.setattr(_cpu, "MIN_PARALLEL_WORK", 0 if threads else 1 << 40)
    taps = maps._gaussian_taps(sigma_nodes)
    noise = np.random.Generator(np.random.PCG64(2**40 + 9)).random((2,) + hw)
    noise *= 2.0
    noise -= 1.0
    noise /= step
    want = np.ascontiguousarray(np.moveaxis(maps._smooth(noise, taps) * 7.25, 0, -1))
    for _ in range(3):
        assert _smoothing.noise_field(2**40 + 9, hw, step, taps, 7.25).tobytes() == want.tobytes()


def test_noise_is_numpys_pcg64_draw_for_draw():
    """The compiled PCG64 lanes give NumPy's ``random()`` doubles in order: with one unit tap the field is
    ``2 u - 1`` itself, for sizes that are and are not whole rounds of lanes, small and huge seeds, and
    a stream whose states' rotations take every value (2**16 draws)."""
    from stntool import _smoothing

    one = np.array([1.0])
    for seed, hw in [(0, (1, 1)), (1, (1, 3)), (7, (2, 2)), (2**64 + 3, (5, 7)), (2**127 + 12345, (9, 4)),
                     (99, (256, 256))]:
        u = np.random.Generator(np.random.PCG64(seed)).random((2,) + hw)
        want = np.ascontiguousarray(np.moveaxis(u * 2.0 - 1.0, 0, -1))
        assert _smoothing.noise_field(seed, hw, 1, one, 1.0).tobytes() == want.tobytes(), (seed, hw)


@pytest.mark.parametrize("theta", [((0.9, -0.3, 0.1), (0.35, 0.85, -0.05)),
                                   ((0.9, -0.3, 0.1), (0.35, 0.85, -0.05), (0.02, -0.03, 1.0))])
def test_record_maps_are_computed_element_by_element(theta):
    """The θ map of a record and an elastic record's lattice are ``(x m0 + y m1) + m2`` (over the third row's,
    projective) in IEEE float64, point by point, as Python's floats compute it: no matrix product whose
    rounding would depend on the machine's BLAS kernel."""
    in_hw, out_hw = (50, 70), (40, 64)
    spec = WarpSpec(theta=theta, out_hw=out_hw)
    m = pixel_map_from_theta(np.array(theta, dtype=np.float64), in_hw, out_hw, False).tolist()
    pts = np.random.default_rng(5).uniform(-10, 80, (200, 2))

    def python_map(x, y):
        qx = x * m[0][0] + y * m[0][1] + m[0][2]
        qy = x * m[1][0] + y * m[1][1] + m[1][2]
        if len(theta) == 3:
            den = x * m[2][0] + y * m[2][1] + m[2][2]
            qx, qy = qx / den, qy / den
        return qx, qy

    want = np.array([python_map(float(x), float(y)) for x, y in pts])
    assert maps.base_map(spec, in_hw, out_hw)(pts).tobytes() == want.tobytes()
    el = spec.replace(elastic=Elastic(3.0, 6.0, 17))
    plan = maps.lattice_plan(el, in_hw)
    step, d = maps.elastic_displacement(el.elastic, out_hw)
    nodes = [(float(b * step), float(a * step)) for a in range(-1, d.shape[0] - 1) for b in range(-1, d.shape[1] - 1)]
    base = np.array([python_map(x, y) for x, y in nodes]).reshape(d.shape)
    assert plan.lattice.tobytes() == (base + d).tobytes()


@pytest.mark.parametrize("align_corners", [False, True])
def test_affine_records_are_the_composed_maps(align_corners):
    """An affine variant's θ, computed in closed form, is ``N_in · m⁻¹ · P_out`` of the map composed from the
    module docstring's factors (transforms' matrices), on non-square inputs and outputs, with flips,
    shears and aspect changes; identity draws give exactly the identity."""
    from stntool import transforms as tf
    from stntool.coords import norm_from_pixel, pixel_from_norm

    aug = Augmenter(rotate=(-180, 180), scale=(0.7, 1.3), aspect=(0.8, 1.25), shear=(-20, 20), shear_y=(-10, 10),
                    translate=0.1, hflip=0.5, vflip=0.5, align_corners=align_corners)
    rng = np.random.default_rng(11)
    for k in range(60):
        in_hw, out_hw = [((512, 512), (512, 512)), ((300, 500), (200, 260)), ((37, 91), (64, 33))][k % 3]
        d = aug._draws(rng)
        t_factor, zoom = (1.0, 1.0) if k % 2 else (0.5, 1.7)
        (hi, wi), (ho, wo) = in_hw, out_hw
        root = math.sqrt(d["aspect"])
        m = tf.compose(tf.translate(-(wi - 1) / 2, -(hi - 1) / 2), tf.scale(wo / wi, ho / hi),
                       tf.scale(-1.0 if d["hflip"] else 1.0, -1.0 if d["vflip"] else 1.0),
                       tf.scale(d["scale"] * root, d["scale"] / root), tf.shear(d["shear"], d["shear_y"]),
                       tf.rotate(d["rotate"]),
                       tf.translate((wo - 1) / 2 + t_factor * d["tx"] * wo, (ho - 1) / 2 + t_factor * d["ty"] * ho),
                       tf.scale(zoom, zoom, ((wo - 1) / 2, (ho - 1) / 2)))
        l00, l01, l10, l11, b0, b1 = aug._affine(d, in_hw, out_hw, t_factor, zoom)
        np.testing.assert_allclose([[l00, l01, b0], [l10, l11, b1], [0.0, 0.0, 1.0]], m, rtol=0, atol=1e-11)
        want = norm_from_pixel(in_hw, align_corners) @ np.linalg.inv(m) @ pixel_from_norm(out_hw, align_corners)
        got = aug._spec(d, in_hw, out_hw, t_factor, zoom).theta
        np.testing.assert_allclose(np.array(got), want[:2], rtol=0, atol=1e-13)
    for hw in ((48, 64), (1, 7)):
        assert Augmenter(align_corners=align_corners).sample(np.random.default_rng(0), hw).theta == (
            (1.0, 0.0, 0.0), (0.0, 1.0 if hw[0] > 1 or not align_corners else 0.0, 0.0))


@pytest.mark.parametrize("align_corners", [False, True])
def test_perspective_records_are_the_fitted_maps(align_corners):
    """A perspective variant's θ, in closed form (the corners' homography by Heckbert's formula, inverted by its
    adjugate), is the one the general DLT fit (``transforms.fit_projective``) gives for the same corners."""
    from stntool import transforms as tf
    from stntool.augment import _extent_corners
    from stntool.coords import norm_from_pixel, pixel_from_norm

    aug = Augmenter(rotate=(-20, 20), scale=(0.8, 1.2), shear=(-10, 10), perspective=0.3, hflip=0.5,
                    align_corners=align_corners)
    rng = np.random.default_rng(3)
    for k in range(60):
        in_hw, out_hw = [((512, 512), (512, 512)), ((300, 500), (200, 260))][k % 2]
        zoom = 1.0 if k % 3 else 1.4
        d = aug._draws(rng)
        l00, l01, l10, l11, b0, b1 = aug._affine(d, in_hw, out_hw)
        q = _extent_corners(out_hw)
        m = tf.fit_projective(q, q + d["corners"] * [out_hw[1], out_hw[0]]) @ np.array(
            [[l00, l01, b0], [l10, l11, b1], [0.0, 0.0, 1.0]])
        m = tf.scale(zoom, zoom, ((out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2)) @ m
        want = norm_from_pixel(in_hw, align_corners) @ np.linalg.inv(m) @ pixel_from_norm(out_hw, align_corners)
        np.testing.assert_allclose(np.array(aug._spec(d, in_hw, out_hw, 1.0, zoom).theta), want / want[2, 2],
                                   rtol=0, atol=1e-13)
        back = np.array(aug._in_from_out(d, in_hw, out_hw, 1.0, zoom))  # what TPS sources are taken through
        inv = np.linalg.inv(m)
        np.testing.assert_allclose(back / back[2, 2], inv / inv[2, 2], rtol=1e-12, atol=1e-9)


def test_quad_from_square_and_degenerate_corners():
    from stntool.augment import _quad_from_square
    from stntool.errors import DegenerateError

    quad = [(3.0, -2.0), (90.0, 5.0), (80.0, 70.0), (-4.0, 60.0)]
    m = np.array(_quad_from_square(quad))
    for (u, v), want in zip(((0, 0), (1, 0), (1, 1), (0, 1)), quad):
        p = m @ (u, v, 1.0)
        np.testing.assert_allclose(p[:2] / p[2], want, rtol=0, atol=1e-12)
    with pytest.raises(DegenerateError):
        _quad_from_square([(0.0, 0.0), (10.0, 0.0), (20.0, 0.0), (0.0, 10.0)])  # three corners on a line


def test_keep_inside_takes_the_least_zoom_of_an_affine_variant():
    """For affine variants the zoom comes in closed form: every corner pixel centre reads the input inside its
    pixel centres, a slightly smaller zoom puts one outside (when the zoom is above 1), and the record is the
    one the bisection of other variants finds, to its resolution."""
    from stntool.augment import _centre_corners

    class Bisecting(Augmenter):
        def _least_zoom(self, *args, **kwargs):
            return 1.0  # no closed form: the search below it runs

    opts = dict(rotate=(-180, 180), scale=(0.3, 3.0), translate=0.45, aspect=(0.5, 2.0), shear=(-10, 10),
                keep_inside=True)
    aug, slow = Augmenter(**opts), Bisecting(**opts)
    rng = np.random.default_rng(8)
    zoomed = 0
    for k in range(150):
        in_hw, out_hw = [((300, 500), (200, 260)), ((64, 64), (64, 64)), ((40, 30), (30, 45))][k % 3]
        d = aug._draws(rng)
        spec = aug._inside(d, in_hw, out_hw)
        np.testing.assert_allclose(spec.theta, slow._inside(d, in_hw, out_hw).theta, rtol=0, atol=3e-8)
        edge = _centre_corners(out_hw)

        def reads_inside(s):
            p = maps.in_from_out(s, edge, in_hw)
            return bool((p >= -1e-9).all() and (p[:, 0] <= in_hw[1] - 1 + 1e-9).all()
                        and (p[:, 1] <= in_hw[0] - 1 + 1e-9).all())

        assert reads_inside(spec)
        for t_factor in (1.0, 0.5, 0.25, 0.0):
            zoom = aug._least_zoom(d, in_hw, out_hw, t_factor, -1e-9)
            if zoom is not None:
                break
        if zoom is not None and zoom > 1.0:
            zoomed += 1
            assert not reads_inside(aug._spec(d, in_hw, out_hw, t_factor, zoom * (1 - 1e-7)))
    assert zoomed > 50


def test_numpy_scalars_are_numbers_like_any_other():
    # a DataLoader worker's seed and values read from NumPy arrays were refused ("seed must be an integer") where
    # Python numbers of the same value were taken
    assert variant_rng(np.int64(5), "a.png", 1).random() == variant_rng(5, "a.png", 1).random()
    a = Augmenter(perspective=np.float64(0.1), tps=np.float32(0.25), tps_grid=np.int64(4), hflip=np.float32(0.5))
    b = Augmenter(perspective=0.1, tps=0.25, tps_grid=4, hflip=0.5)
    assert a == b and type(a.tps_grid) is int and type(a.perspective) is float
    for bad in (dict(tps_grid=np.bool_(True)), dict(tps_grid=4.0), dict(perspective=True)):
        with pytest.raises(InvalidArgumentError):
            Augmenter(**bad)
    with pytest.raises(InvalidArgumentError):
        variant_rng(np.bool_(True), "a.png", 1)


def test_keep_inside_settles_a_folding_field_by_a_warp():
    # a strong field reads farther from pixels inside the output than from its border: checked on the border
    # alone, 5 of these 30 draws showed padding (up to 37 pixels); settled by a white uint8 warp, they read
    # 0.002 px outside (0.998 in a float image, 65407 in a uint16 one)
    img = np.ones((96, 128), np.float32)
    aug = Augmenter(keep_inside=True, elastic=(200.0, 4.0))
    for seed in range(30):
        spec = aug.sample(np.random.default_rng(seed), img.shape)
        assert (apply_spec(img, spec) == 1.0).all(), seed
        assert (apply_spec(np.full(img.shape, 65535, np.uint16), spec) == 65535).all(), seed
    # a field's reads need not clear steadily as the zoom grows: this one shows padding at zooms 1, 12 and 16,
    # none from 2.5 to 9 (it was kept as drawn, 27 px outside)
    spec = aug.sample(variant_rng(11, "el200", 13), (64, 96))
    assert (apply_spec(np.ones((64, 96), np.float32), spec) == 1.0).all()


def test_keep_inside_with_an_elastic_field_shows_no_padding():
    # the outline was checked at points between pixel centres, where a field bends otherwise: an edge pixel of
    # about one draw in three read up to 0.03 px outside the input (1-5 grey levels of padding)
    img = np.full((48, 80), 200, np.uint8)
    aug = Augmenter(keep_inside=True, elastic=(60.0, 4.0))
    for seed in range(60):
        spec = aug.sample(np.random.default_rng(seed), img.shape)
        assert (apply_spec(img, spec) == 200).all(), seed


@pytest.mark.parametrize("sigma", [10.0, 40.0])
def test_an_elastic_record_over_a_projective_horizon_is_refused(sigma):
    """With the horizon of a projective θ crossing the output, the field's lattice interpolated straight across it:
    alpha 0 differed from the plain warp at 98-322 of 1600 pixels, silently. Only a node exactly on the horizon
    was refused."""
    img = np.random.default_rng(0).random((40, 40))
    crossing = ((1, 0, 0), (0, 1, 0), (0.9, 0, 0.05))
    with pytest.raises(InvalidArgumentError, match="horizon in view"):
        apply_spec(img, WarpSpec(theta=crossing, elastic=Elastic(0.0, sigma, 0)), "cpu")
    tilted = ((1, 0, 0), (0, 1, 0), (0.1, 0.05, 1.0))  # its horizon far outside: alpha 0 is the plain warp,
    out = apply_spec(img, WarpSpec(theta=tilted, elastic=Elastic(0.0, sigma, 0)), "cpu")  # read through the lattice
    assert np.abs(out - apply_spec(img, WarpSpec(theta=tilted), "cpu")).max() < 0.05


def test_an_elastic_lattice_too_large_is_refused_not_a_memory_error():
    spec = WarpSpec(theta=((1, 0, 0), (0, 1, 0)), out_hw=(10**6, 10**6), elastic=Elastic(1.0, 0.01, 1))
    with pytest.raises(InvalidArgumentError, match="lattice nodes"):
        maps.lattice_plan(spec, (40, 40))
    with pytest.raises(InvalidArgumentError, match="lattice nodes"):  # the public field alone, likewise
        maps.elastic_displacement(spec.elastic, spec.out_hw)


def test_a_perspective_whose_horizon_reaches_the_elastic_lattice_is_scaled_down_not_refused():
    # the lattice reaches half a sigma beyond the output: some draws of --perspective 0.2 --elastic 1,60 on a
    # 64x64 image put the horizon on it, and the record could not be warped (its input failed, every variant lost)
    with_field, alone = Augmenter(perspective=0.2, elastic=(1.0, 60.0)), Augmenter(perspective=0.2)
    img = np.full((64, 64), 200, np.uint8)
    kept = scaled = 0
    for k in range(120):
        spec = with_field.sample(variant_rng(1, "q.png", k), (64, 64))
        plain = alone.sample(variant_rng(1, "q.png", k), (64, 64))  # the same corner draws, no field
        assert maps.horizon_clear_of_lattice(spec, (64, 64))
        apply_spec(img, spec)
        if maps.horizon_clear_of_lattice(WarpSpec(theta=plain.theta, elastic=spec.elastic), (64, 64)):
            assert spec.theta == plain.theta  # draws clear of the lattice are left as they were
            kept += 1
        else:
            assert spec.theta != plain.theta and abs(spec.theta[2][0]) + abs(spec.theta[2][1]) < \
                abs(plain.theta[2][0]) + abs(plain.theta[2][1])
            scaled += 1
    assert kept > 80 and scaled >= 3
