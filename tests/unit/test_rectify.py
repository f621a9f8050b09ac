"""Rectifier with the shipped text model: known distortions of the shipped sample undone, quarter turns, no-text
images left alone, the page θ convention."""

import math
import os

import numpy as np
import pytest

import stntool
from stntool import transforms as tf
from stntool.errors import InvalidArgumentError
from stntool.io import read_image
from stntool.rectify import MODELS, Rectifier

SAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "samples", "text_page.png")
pytestmark = pytest.mark.skipif(not os.path.exists(MODELS["text"]), reason="the shipped model is not built")


@pytest.fixture(scope="module")
def page():
    img = read_image(SAMPLE)[0]
    return img if img.ndim == 2 else img[..., 0]


@pytest.fixture(scope="module")
def rect():
    return Rectifier("text", min_confidence=0.3)


@pytest.fixture(scope="module")
def rect_rotation():
    return Rectifier("text", family="rotation")


#: The held-out family these tests' pages are drawn in: on a machine with DejaVu alone it is the held-out split's
#: only family, so the pages (and the figures the tests check) are the same whichever other fonts are installed.
TEST_FAMILY = "dejavu serif condensed"


def heldout_page(seed, **kwargs):
    """``render_page(seed, split="heldout", ...)`` drawn in :data:`TEST_FAMILY` alone (skips without it)."""
    pytest.importorskip("PIL")
    from stntool.pages import find_fonts, render_page

    faces = [f for f in find_fonts() if f.family.lower() == TEST_FAMILY]
    if not faces:
        pytest.skip(f"needs the {TEST_FAMILY} fonts")
    return render_page(seed, fonts=faces, split="heldout", **kwargs)


def distort(page, degrees, shear=0.0):
    """The page turned by ``degrees`` (counter-clockwise) and x-sheared about its centre, padded with paper."""
    h, w = page.shape
    c = ((w - 1) / 2, (h - 1) / 2)
    fwd = tf.translate(*c) @ tf.rotate(degrees) @ tf.shear(math.degrees(math.atan(shear))) @ tf.translate(-c[0], -c[1])
    theta = tf.theta_from_pixel_map(fwd, (h, w))
    return stntool.warp(page, theta, padding="constant", fill=float(np.median(page[0]))), np.linalg.inv(fwd)


def residual(in_from_out_distortion, theta, hw):
    """Residual rotation (degrees) of the corrected page against the upright one (polar decomposition)."""
    m = in_from_out_distortion @ tf.pixel_map_from_theta(np.asarray(theta), hw)
    u, _, vt = np.linalg.svd(m[:2, :2])
    r = u @ vt
    return abs(math.degrees(math.atan2(r[1, 0], r[0, 0])))


@pytest.mark.parametrize("degrees", [-25.0, -7.5, 4.0, 18.0])
def test_known_rotations_of_the_sample_are_undone(page, rect_rotation, degrees):
    img, d = distort(page, degrees)
    theta, conf = rect_rotation.estimate(img)
    assert conf >= 0.3
    assert residual(d, theta, img.shape) < 0.1  # held-out medians are 0.045-0.06°


@pytest.mark.parametrize("degrees,shear", [(10.0, 0.1), (-15.0, -0.08)])
def test_rotation_and_shear_are_undone_by_the_affine_family(page, degrees, shear):
    img, d = distort(page, degrees, shear)
    theta, conf = Rectifier("text", family="affine").estimate(img)
    m = d @ tf.pixel_map_from_theta(np.asarray(theta), img.shape)
    lin = m[:2, :2] / np.sqrt(abs(np.linalg.det(m[:2, :2])))
    assert np.allclose(lin, np.eye(2), atol=0.03)  # rotation and shear gone (the scale is the page's own)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_quarter_turned_pages_come_back_upright(page, rect, k):
    turned = np.ascontiguousarray(np.rot90(page, k))
    theta, conf, info = rect.estimate(turned, details=True)
    assert info["quarter_turns"] == k
    # np.rot90 once: turned(x, y) = page(W - 1 - y, x), a linear part [[0, -1], [1, 0]] from turned to page pixels
    lin = np.linalg.matrix_power(np.array([[0.0, -1.0], [1.0, 0.0]]), k)
    m = lin @ tf.pixel_map_from_theta(np.asarray(theta), turned.shape)[:2, :2]
    u, _, vt = np.linalg.svd(m)
    r = u @ vt
    assert abs(math.degrees(math.atan2(r[1, 0], r[0, 0]))) < 1.0


@pytest.mark.parametrize("k", [1, 3])
def test_a_long_page_turned_sideways_comes_back_upright_whole(page, rect, k):
    # a receipt on its side showed a piece of itself as long as it is narrow in the input's shape: refined on
    # that piece, it came back turned about 108 degrees and sheared, with a confidence that passed
    receipt = np.ascontiguousarray(np.vstack([page[60:460, 20:170]] * 5))  # 150x2000, 100 lines of text
    turned = np.ascontiguousarray(np.rot90(receipt, k))
    out, (spec, conf, info) = rect(turned, upright_size=True, mode="nearest")
    assert info["quarter_turns"] == k and conf > 0.9 and info["reason"] is None
    assert out.shape == receipt.shape and np.array_equal(out, receipt)
    theta, conf2, info2 = rect.estimate(receipt, details=True)  # upright: left alone
    assert info2["quarter_turns"] == 0 and np.array_equal(theta, np.eye(3)[:2]) and conf2 > 0.9


@pytest.mark.parametrize("faint", ["12-bit", "16 levels"])
def test_a_page_of_little_contrast_is_read_as_any_other(page, rect, faint):
    # text lines are told from paper by an ink level of their own: a 12-bit scan in 16 bits (levels 0 .. 4095)
    # or a faint page read as having no text and came back unstraightened, "low confidence"
    img, d = distort(page, 7.0)
    faded = img.astype(np.uint16) * 16 if faint == "12-bit" else (img // 16 + 200).astype(np.uint8)
    theta, conf, info = rect.estimate(faded, details=True)
    assert info["reason"] is None and conf > 0.9
    assert residual(d, theta, img.shape) < 0.1
    blank = np.full(page.shape, 0.8, np.float32) + np.random.default_rng(0).normal(0, 0.004, page.shape).astype(
        np.float32)  # noise spanning 0.03: not stretched into text, nor is anything flatter
    assert rect.estimate(blank, details=True)[2]["reason"] is not None
    for seed, sigma in ((0, 3.0), (108, 2.0)):  # a scanner's noise spans more: smoothed away, it is still no text
        blank = np.clip(np.random.default_rng(seed).normal(240, sigma, (800, 600)), 0, 255).astype(np.uint8)
        theta, conf, info = rect.estimate(blank, details=True)
        assert info["reason"] is not None and np.array_equal(theta, np.eye(3)[:2]), (seed, conf, info)


def test_colour_pages_of_every_dtype_are_read_as_their_float32_twin(page, rect):
    # OpenCV turns uint8, uint16 and float32 colour to grey, not float64: a float64 colour page (a TIFF) raised
    # cv2.error out of the estimate
    img, d = distort(page, 7.0)
    colour = np.repeat(img[..., None], 3, axis=2) / 255.0
    theta32, conf32 = rect.estimate(colour.astype(np.float32))
    theta64, conf64 = rect.estimate(colour)
    assert np.array_equal(theta64, theta32) and conf64 == conf32
    assert residual(d, theta64, img.shape) < 0.1


def test_a_straight_banner_is_not_turned(page, rect):
    # one line of text 45 times as long as it is high: an unsure quarter head turned it (0.66 sure) into a
    # few columns of ink, with a confidence that passed
    for rows in ((60, 100), (60, 130)):
        banner = np.ascontiguousarray(np.hstack([page[rows[0]:rows[1]]] * 5))
        theta, conf, info = rect.estimate(banner, details=True)
        assert info["quarter_turns"] == 0 and np.array_equal(theta, np.eye(3)[:2]), (rows, info)


@pytest.mark.parametrize("kind", ["blank", "noise", "photo", "pattern", "logo", "chart"])
def test_images_without_text_come_back_unchanged(rect, kind):
    rng = np.random.default_rng(0)
    sample = os.path.dirname(SAMPLE)
    img = {"blank": np.full((300, 220), 245, np.uint8),
           "noise": rng.integers(0, 256, (300, 220), dtype=np.uint8),
           "photo": read_image(os.path.join(sample, "photo.jpg"))[0],
           "pattern": read_image(os.path.join(sample, "gray16.png"))[0],  # a checkerboard: rows of ink, no lines
           "logo": read_image(os.path.join(sample, "icon_rgba.png"))[0],
           "chart": read_image(os.path.join(sample, "chart.png"))[0]}[kind]  # bars: rows of ink once turned
    theta, conf, info = rect.estimate(img, details=True)
    assert conf < 0.3 and info["reason"].startswith("low confidence")
    assert np.array_equal(theta, [[1, 0, 0], [0, 1, 0]])
    out, (spec, _, _) = rect(img)
    assert np.array_equal(out, img)


@pytest.mark.parametrize("kind, hw, seed", [("uniform", (64, 64), 0), ("gauss", (64, 64), 3), ("gauss", (96, 96), 2),
                                           ("uniform", (128, 128), 3), ("uniform", (64, 200), 2),
                                           ("uniform", (256, 256), 2), ("uniform", (8, 2000), 3),
                                           ("uniform", (2000, 8), 3)])
def test_small_noise_images_come_back_unchanged(rect, kind, hw, seed):
    """Noise that the sweeps once straightened into rows of text lines (confidence 0.49-1.0): its row profile has
    no period and as many lines read down as across, or the page made straight shows too few text lines; a
    strip narrower than ``_THIN`` either way holds no two lines (8x2000 noise: 0.65, 2000x8: 0.88 before)."""
    rng = np.random.default_rng(seed)
    img = (rng.integers(0, 256, hw, dtype=np.uint8) if kind == "uniform"
           else np.clip(rng.normal(128, 40, hw), 0, 255).astype(np.uint8))
    theta, conf = rect.estimate(img)
    assert conf < 0.3 and np.array_equal(theta, [[1, 0, 0], [0, 1, 0]])


def test_page_theta_is_the_output_size_pytorch_convention(page, rect):
    img, _ = distort(page, 9.0)
    spec, conf, info = rect.spec(img)
    assert spec.out_hw == img.shape[:2] and spec.align_corners is False and spec.padding == "constant"
    assert np.array_equal(stntool.warp(img, spec.theta, padding="constant", fill=spec.fill), rect(img)[0])


def test_bad_models_and_images():
    with pytest.raises(InvalidArgumentError):
        Rectifier(__file__)
    with pytest.raises(InvalidArgumentError):
        Rectifier("text", family="projective")
    with pytest.raises(InvalidArgumentError, match="at least 8x8 pixels, got 4x4"):
        Rectifier("text").estimate(np.zeros((4, 4), np.uint8))
    with pytest.raises(InvalidArgumentError, match=r"takes one image.*\(2, 40, 30, 3\) \(a batch: one call per page\)"):
        Rectifier("text").estimate(np.zeros((2, 40, 30, 3), np.uint8))  # it said "at least 8x8 pixels"


@pytest.mark.parametrize("degrees", [-20.0, 12.0])
def test_the_shipped_net_alone_predicts_a_known_rotation_of_the_sample(page, degrees):
    """No refinement, one look: the localisation net's own θ is within a few degrees."""
    img, d = distort(page, degrees)
    theta, _ = Rectifier("text", refine=False, iterations=1, min_confidence=0.0).estimate(img)
    assert residual(d, theta, img.shape) < 3.0


@pytest.fixture(scope="module")
def text_page():
    """A rendered page in a font and layout the model never saw."""
    return heldout_page((12, 0), size=(700, 520), degrade=False)


def test_the_shipped_upright_head_reads_a_page(text_page):
    from stntool import pageview as pv
    from stntool.locnet import LocNet

    net = LocNet.load(MODELS["text"])
    up = pv.page_line_profile(text_page, np.eye(3))[0]
    down = pv.page_line_profile(text_page, [[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])[0]
    s_up, s_down = net.upright_logit(np.stack([up, down]))
    assert s_up > 2.0 and s_down == pytest.approx(-s_up, rel=1e-6)


@pytest.mark.parametrize("degrees", [0.0, 180.0 + 4.0])
def test_the_upright_head_overrules_an_unsure_quarter_head(text_page, degrees, monkeypatch):
    """The quarter head made to favour the wrong half turn (0.6 against 0.3): the second look at the
    straightened page turns it the right way; the same net without its upright head does not."""
    from stntool.locnet import LocNet

    img, d = distort(text_page, degrees)
    right = 0 if degrees == 0.0 else 2
    wrong = np.full(4, 0.05)
    wrong[(right + 2) % 4], wrong[right] = 0.6, 0.3
    rect = Rectifier("text", refine=False, min_confidence=0.0)
    monkeypatch.setattr(rect, "_quarter_probabilities", lambda work: wrong.copy())
    theta, _, info = rect.estimate(img, details=True)
    assert info["quarter_turns"] == right and info["quarter_probability"] > 0.6
    assert residual(d, theta, img.shape) < 3.0

    headless = LocNet.load(MODELS["text"])
    headless.upright_head = None
    rect = Rectifier(headless, refine=False, min_confidence=0.0)
    monkeypatch.setattr(rect, "_quarter_probabilities", lambda work: wrong.copy())
    theta, _, info = rect.estimate(img, details=True)
    assert info["quarter_turns"] == (right + 2) % 4 and residual(d, theta, img.shape) > 170.0


def test_the_upright_head_outweighs_a_quarter_head_sure_of_the_wrong_half_turn(text_page, monkeypatch):
    """The quarter head 10,000 times surer of the wrong half turn than of the right one (as it is on some
    scans): the upright head's odds, counted :data:`rectify._UPRIGHT_WEIGHT` times over each way, turn the
    page the right way; counted once (a plain product of the two heads' odds), they do not."""
    import stntool.rectify as R

    img, d = distort(text_page, 180.0)
    sure = np.array([0.9998, 0.00005, 0.0001, 0.00005])  # the page is turned half round: 2 is right
    rect = Rectifier("text", refine=False, min_confidence=0.0)
    monkeypatch.setattr(rect, "_quarter_probabilities", lambda work: sure.copy())
    theta, _, info = rect.estimate(img, details=True)
    assert info["quarter_turns"] == 2 and residual(d, theta, img.shape) < 3.0
    monkeypatch.setattr(R, "_UPRIGHT_WEIGHT", 0.5)
    theta, _, info = rect.estimate(img, details=True)
    assert info["quarter_turns"] == 0 and residual(d, theta, img.shape) > 170.0


def test_the_upright_head_counts_in_proportion_to_the_lines_it_read(monkeypatch):
    """The same "upside down" (log-odds -1.5) against a quarter head 0.95 sure of no turn: read from 40 text-line
    runs it counts a fifth (2 x 0.2 x 1.5 each way, 1.2 in all, under the quarter head's 2.94) and the page stays;
    read from 400 it counts in full (6) and the page is turned half round."""
    import stntool.rectify as R

    class Lines:
        def __init__(self, count):
            self.count = count

        def profile(self, theta_sq, bins):
            return np.zeros(bins), self.count

    rect = Rectifier("text", refine=False, min_confidence=0.0)
    monkeypatch.setattr(rect.net, "upright_logit", lambda profiles: np.array([-1.5]))
    prob = np.array([0.95, 0.0, 0.05, 0.0])
    for count, turns in [(40, 0), (R._UPRIGHT_LINES - 1, 2), (400, 2)]:
        k, p, theta_sq = rect._second_look(Lines(count), 0, prob, np.eye(3))
        assert k == turns and p.sum() == pytest.approx(1.0)
        np.testing.assert_array_equal(theta_sq, np.eye(3) if turns == 0 else np.diag([-1.0, -1.0, 1.0]))


@pytest.mark.parametrize("seed,degrees,turns", [((3, 2), -22.0, 0), ((3, 3), 95.0, 1)])
def test_small_pages_photographed_on_a_desk_are_straightened(seed, degrees, turns):
    """Held-out pages in colour, a page in a photo: columns with gutters and the page's edges make the
    column profile oscillate as much as the row profile; the text lines, read across, still count."""
    page = heldout_page(seed, size=(700, 520), colour=True)
    h, w = page.shape[:2]
    c = ((w - 1) / 2, (h - 1) / 2)
    fwd = tf.translate(*c) @ tf.rotate(degrees) @ tf.translate(-c[0], -c[1])
    img = stntool.warp(page, tf.theta_from_pixel_map(fwd, (h, w)), padding="constant",
                       fill=[float(v) for v in np.median(page[0], axis=0)])
    theta, conf, info = Rectifier("text", family="rotation").estimate(img, details=True)
    assert conf > 0.9 and info["reason"] is None and info["quarter_turns"] == turns
    assert residual(np.linalg.inv(fwd), theta, img.shape[:2]) < 0.5


@pytest.mark.parametrize("ang,shear", [(0.0, 0.0), (12.0, 0.05), (95.0, 0.0), (-30.0, 0.1), (180.0, -0.08)])
def test_profile_coverage_is_the_part_of_each_line_inside_the_image(ang, shear):
    """The length of each output row's (column's) intersection with the image, against the image of ones
    warped by the same θ and summed (bilinear: a line along the image's edge reads it in part, which the
    rectangle's half-pixel border does not model to better than a pixel and a half)."""
    from stntool.pageview import page_theta
    from stntool.rectify import _coverage, _Ink, _shape_theta

    img = np.random.default_rng(0).integers(0, 256, (700, 520), dtype=np.uint8)
    ink = _Ink(img, 512)
    theta = _shape_theta(ang, shear)
    ones = stntool.warp(np.ones_like(ink.ink), page_theta(theta[:2], ink.hw), padding="zeros").astype(np.float64)
    for axis in (1, 0):
        diff = np.abs(_coverage(ink, theta, axis) - ones.sum(axis=axis))
        assert diff.max() < 1.5 and np.median(diff) < 0.1


@pytest.mark.parametrize("ang,shear,f", [(0.0, 0.0, 1), (12.0, 0.05, 2), (95.0, 0.0, 2), (-30.0, 0.1, 3)])
def test_inside_spans_are_the_pixels_that_read_the_image_with_every_tap(ang, shear, f):
    """The line ends' spans (edge 0): the output pixels of each row, in a frame ``f`` times the ink's size,
    whose bilinear taps all lie inside the image: where the image of ones, warped, reads exactly 1 (away from
    the spans' ends by more than rounding)."""
    from stntool.pageview import page_theta
    from stntool.rectify import _Ink, _inside_spans, _shape_theta
    from stntool.transforms import pixel_map_from_theta

    img = np.random.default_rng(0).integers(0, 256, (300, 220), dtype=np.uint8)
    ink = _Ink(img, 300)
    in_hw = ink.ink.shape
    hw = (f * in_hw[0], f * in_hw[1])
    tp = page_theta(_shape_theta(ang, shear)[:2], ink.hw)
    m = pixel_map_from_theta(tp, in_hw, hw)
    lo, hi = _inside_spans(m, in_hw, 1, np.full(hw[0], -np.inf), np.full(hw[0], np.inf), 0.0)
    full = stntool.warp(np.ones(in_hw, np.float32), tp, out_hw=hw, padding="zeros") == 1.0
    x = np.arange(hw[1])[None, :]
    inside = (x >= lo[:, None]) & (x <= hi[:, None])
    clear = (np.abs(x - lo[:, None]) > 1e-6) & (np.abs(x - hi[:, None]) > 1e-6)
    assert inside.any() and (ang == 0.0 or not inside.all())
    assert np.array_equal(inside[clear], full[clear])


@pytest.mark.parametrize("ang,shear", [(0.0, 0.0), (12.0, 0.05), (95.0, 0.0), (-30.0, 0.1)])
def test_profile_coverage_of_strips_adds_up_to_the_whole_lines(ang, shear):
    """A line's coverage within each strip side by side (``span``) sums to its coverage (exactly: the strips
    cut each line at the same output pixels), and a strip's is the ones image's sum within it."""
    from stntool.pageview import page_theta
    from stntool.rectify import _coverage, _Ink, _shape_theta

    img = np.random.default_rng(1).integers(0, 256, (700, 520), dtype=np.uint8)
    ink = _Ink(img, 512)
    theta = _shape_theta(ang, shear)
    w = ink.ink.shape[1]
    halves = [_coverage(ink, theta, 1, span=(0, w // 2)), _coverage(ink, theta, 1, span=(w // 2, w))]
    np.testing.assert_allclose(halves[0] + halves[1], _coverage(ink, theta, 1), rtol=0, atol=1e-9)
    ones = stntool.warp(np.ones_like(ink.ink), page_theta(theta[:2], ink.hw), padding="zeros").astype(np.float64)
    diff = np.abs(halves[1] - ones[:, w // 2:].sum(axis=1))
    assert diff.max() < 1.5 and np.median(diff) < 0.1


def test_fine_energies_of_whole_rows_and_strips_share_one_warp(monkeypatch):
    """The whole rows' fine energy warps the ink once and keeps the halves' sums too: the two-halves energy at
    the same θ warps nothing more, and both equal the energies summed from the warped ink directly."""
    from stntool import rectify as R

    rng = np.random.default_rng(3)
    img = np.full((700, 900), 230, np.uint8)
    for top in range(30, 670, 17):  # text-like bars, two columns
        for x0 in (40, 470):
            img[top:top + 6, x0:x0 + int(rng.integers(250, 390))] = 40
    ink = R._Ink(img, 900, blur=0.0)
    assert ink.ink.shape[1] >= R._STRIPS * R._STRIP_MIN
    rect = Rectifier("text")
    theta = R._shape_theta(0.4, 0.03)
    warps = []
    warp_ink = rect._warp_ink
    monkeypatch.setattr(rect, "_warp_ink", lambda *a, **k: warps.append(1) or warp_ink(*a, **k))
    whole = rect._fine_row_energy(ink, theta)
    strips = rect._strip_row_energy(ink, theta)
    assert len(warps) == 1
    h, w = ink.ink.shape
    warped = warp_ink(ink, theta, (R._FINE_ROWS * h, w), row_shift=R._FINE_SHIFT * R._FINE_ROWS).astype(np.float64)
    scale = h * w / ink.total("ink") ** 2 / R._FINE_ROWS

    def energy(a, b):
        cover = np.repeat(R._coverage(ink, theta, 1, (h, w), (a, b)), R._FINE_ROWS)
        inside = cover >= 0.1 * (b - a)
        return (np.where(inside, warped[:, a:b].sum(1) ** 2 / np.where(inside, cover, 1.0), 0.0)).sum() * scale

    assert whole == pytest.approx(energy(0, w), rel=1e-9)
    assert strips == pytest.approx(energy(0, round(w / 2)) + energy(round(w / 2), w), rel=1e-9)
    assert abs(strips - whole) > 1e-3 * whole  # the halves are not the whole rows
    rect._fine_row_energy(ink, R._shape_theta(0.45, 0.03))
    assert len(warps) == 2


def test_the_strips_climb_on_past_their_reach_to_their_lines(page, rect_rotation, monkeypatch):
    """Energies of the angle alone: the coarse sweeps and the whole rows are sharpest near 10° (a two-column
    page's tilt), the strips at 7.7°, 2.3° away, beyond one climb's reach (:data:`_FINE_LIMIT`). The strips'
    climb goes on from its reach and the page comes back at the strips' angle, where it stopped at 9° (and the
    net's neighbourhood, searched again by whole rows, drew nothing nearer)."""
    from stntool import rectify as R

    def peaked(at, width):
        def energy(ink, theta_sq, want_grad=False):
            assert not want_grad
            a = R._angle_shear(theta_sq[:2, :2] / theta_sq[2, 2])[0]
            return math.exp(-(((a - at) / width) ** 2)) + 0.01
        return energy

    assert 2.3 > 2 * R._FINE_LIMIT and R._FINE_CLIMBS >= 3
    for name, at, width in (("_wide_row_energy", 10.0, 1.5), ("_row_energy", 10.0, 1.5),
                            ("_fine_row_energy", 10.05, 2.0), ("_strip_row_energy", 7.7, 1.0)):
        monkeypatch.setattr(rect_rotation, name, peaked(at, width))
    lines = R._Lines(page, "cpu")
    theta_sq, _ = rect_rotation._refine(page, R._shape_theta(7.6, 0.0), lines)
    assert R._angle_shear(theta_sq[:2, :2])[0] == pytest.approx(7.7, abs=0.01)


def test_two_columns_with_offset_baselines_do_not_tilt_a_straight_page(monkeypatch):
    """A straight held-out page in two columns whose baselines are offset by about half a line (an equation in
    the right column): whole rows are sharpest tilted about 0.75° (the left column's lines meeting the right
    column's), the two strips at the page's own angle."""
    from stntool import rectify as R

    page = heldout_page((11, 15), degrade=False)
    rect = Rectifier("text")
    hw = page.shape[:2]
    with_strips = abs(residual(np.eye(3), rect.estimate(page)[0], hw))
    monkeypatch.setattr(R, "_STRIP_MIN", 10 ** 6)  # no page wide enough: the whole rows alone
    without = abs(residual(np.eye(3), rect.estimate(page)[0], hw))
    assert without > 0.6 and with_strips < 0.4


def _ruled_page(seed=0, cut=0):
    """A white page of left-aligned 'text lines' (dark bars of random lengths and word gaps, 6 px high, 14 px
    apart) starting at x = 60, the leftmost ``cut`` pixels cut off by the image's edge."""
    rng = np.random.default_rng(seed)
    page = np.full((600, 480), 255, np.uint8)
    for top in range(40, 560, 14):
        x = 60
        end = 60 + int(rng.integers(200, 380))
        while x < end:
            word = int(rng.integers(12, 40))
            page[top:top + 6, x:min(x + word, end)] = 30
            x += word + int(rng.integers(4, 7))
    return page[:, cut:]


def test_line_ends_are_the_runs_of_a_row_and_not_the_image_edge():
    from stntool.rectify import _line_ends

    ink = np.zeros((20, 60), np.float32)
    ink[5, 10:20] = 1.0
    ink[5, 23:30] = 1.0  # a 3-pixel gap: closed over, one run 10 .. 29
    ink[9, 40:50] = 1.0  # a 10-pixel gap from nothing: a run of its own
    ink[12, 4:15] = 1.0  # cut off by the image's outline (x < 4): its start is not a margin
    inside = (np.full(20, 4.0), np.full(20, np.inf))  # every row reads the image from column 4 on
    ink[16, 20:24] = [0.3, 0.8, 1.0, 1.0]  # soft edges: the ends are where the ink crosses the threshold
    ink[16, 24:27] = [1.0, 0.8, 0.3]
    ink = np.round(ink * 255.0).astype(np.uint8)  # as the margin search warps it (_Ink.strokes_u8)
    (xs, ys), (xe, ye) = _line_ends(ink, inside, 5)
    # each end lies between the last pixel of paper and the first of ink
    starts = sorted(zip(ys.tolist(), xs.tolist()))
    ends = sorted(zip(ye.tolist(), xe.tolist()))
    assert [y for y, _ in starts] == [5.0, 9.0, 16.0] and [y for y, _ in ends] == [5.0, 9.0, 12.0, 16.0]
    assert 9.0 < starts[0][1] <= 10.0 and 39.0 < starts[1][1] <= 40.0 and 19.0 < starts[2][1] <= 22.0
    assert 29.0 <= ends[0][1] < 30.0 and 49.0 <= ends[1][1] < 50.0 and 14.0 <= ends[2][1] < 15.0
    assert starts[2][1] + ends[3][1] == pytest.approx(46.0)  # the soft run is symmetric about x = 23
    empty = _line_ends(np.zeros_like(ink), inside, 5)
    assert all(len(a) == 0 for pts in empty for a in pts)


@pytest.mark.parametrize("light_text", [False, True])
def test_the_line_ends_read_the_strokes_and_not_the_paper_beside_them(light_text):
    from stntool.rectify import _Ink

    page = np.full((1280, 900), 240, np.uint8)
    page[300:900, 440:444] = 20  # a dark vertical stroke, 4 px wide
    page[200:210, 100:800] = 20  # and a rule above it
    if light_text:
        page = 255 - page
    ink = _Ink(page, 1280, blur=0.0)
    row = 600
    # |grey - local mean| lights up the paper beside the stroke too (the stroke darkens the local mean there)
    assert ink.ink[row, 430:440].min() > 0.04 and ink.ink[row, 444:454].min() > 0.04
    strokes = ink.strokes_u8.astype(float)
    assert strokes.max() == 255 and strokes[row, 440:444].min() > 160
    # beside the stroke only the smoothing's tail, gone three pixels past its edges
    assert strokes[row, :437].max() == 0 and strokes[row, 447:].max() == 0
    above_half = np.flatnonzero(strokes[row] >= 128)
    assert above_half[0] == 440 and above_half[-1] == 443
    # the fine image's ink is the strokes alone, unsmoothed
    fine = _Ink(page, 1280, blur=0.0, strokes=True)
    assert fine.ink[row, 440:444].min() > 0.5 and fine.ink[row, :440].max() < 1e-6 and fine.ink[row, 444:].max() < 1e-6
    np.testing.assert_array_equal(fine.strokes_u8, ink.strokes_u8)


def test_column_energies_of_a_sweep_are_the_histograms_one_shear_at_a_time():
    """The margin sweep's energies, compiled, equal the one-shear-at-a-time histograms in NumPy (points moved
    along their rows, shared between two columns, smoothed), also for points that leave the image."""
    from stntool.rectify import _column_energies, _column_energy_of_points

    rng = np.random.default_rng(3)
    x = np.r_[rng.normal(40.3, 0.4, 300), rng.normal(200.7, 0.4, 200), rng.uniform(-20, 330, 500)]
    y = rng.uniform(0, 420, len(x))
    slope = np.array([0.0015, -0.71, 150.0])
    offsets = np.linspace(-0.3, 0.3, 45)
    got = _column_energies((x, y), slope, offsets, 300)
    want = [_column_energy_of_points((x, y), np.array([1.0, 0.0, 0.0]) + d * slope, 300) for d in offsets]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert np.argmax(got) == np.argmin(np.abs(offsets))  # the columns were drawn straight
    assert _column_energies((np.zeros(0), np.zeros(0)), slope, offsets, 300).tolist() == [0.0] * len(offsets)


@pytest.mark.parametrize("shear,cut", [(0.0, 0), (0.12, 0), (-0.2, 0), (0.08, 40)])
def test_the_margin_shear_lines_up_the_starts_of_the_lines(rect, shear, cut):
    """A page of left-aligned lines, x-sheared by a known amount: the margin search finds the shear that makes
    the margin vertical again (to a thousandth), also when the text runs off the image's edge."""
    from stntool.pageview import page_theta
    from stntool.rectify import _Ink, _shape_theta

    page = _ruled_page(cut=cut)
    # the page warped by θ = Sh(-shear) in its square frame; θ · Sh(shear) reads it straight again
    img = stntool.warp(page, page_theta(_shape_theta(0.0, -shear)[:2], page.shape), padding="border")
    ink = _Ink(img, 1280)
    found, prominence = rect._margin_shear(ink, np.eye(3), 0.0, 0.0)
    assert abs(found - shear) < 2e-3
    assert prominence > 2.0


@pytest.mark.parametrize("shear", [0.12, -0.12, 0.06, -0.06])
def test_a_margin_just_outside_the_output_still_lines_up(rect, shear):
    """The output starts 2 px right of the page's margin (a page zoomed or moved so its margin is cut off):
    at shear0 the sheared margin shows in half of the rows, and the shear that lines it up puts all of its
    points left of the output's first column. They count there: the sweep's histograms reach beyond the
    frame (dropped, as they once were, the sweep settled on shears 0.01-0.03 smaller)."""
    from stntool.pageview import page_theta
    from stntool.rectify import _Ink, _shape_theta

    page = _ruled_page()
    base = np.eye(3)
    base[0, 2] = 2.0 * (60 + 2) / max(page.shape)  # output x = 0 reads the page 2 px right of its margin
    img = stntool.warp(page, page_theta(_shape_theta(0.0, -shear)[:2], page.shape), padding="border")
    found, prominence = rect._margin_shear(_Ink(img, 1280), base, 0.0, 0.0)
    assert abs(found - shear) < 2e-3
    assert prominence > 2.0


def test_sweep_reach_covers_every_move_of_the_sweep():
    from stntool.rectify import _column_energies, _sweep_reach

    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 300, 400), rng.uniform(0, 420, 400)
    slope = np.array([0.0015, -0.71, 150.0])
    pad = _sweep_reach([(x, y)], slope, 0.3)
    moved = x[:, None] + np.linspace(-0.3, 0.3, 7) * (slope[0] * x + slope[1] * y + slope[2])[:, None]
    assert moved.min() >= -pad + 2 and moved.max() <= 300 + pad - 2
    # with the frame padded, the energies are those of the same points anywhere inside a wider frame
    shifted = slope - (0.0, 0.0, slope[0] * pad)
    offsets = np.linspace(-0.3, 0.3, 13)
    a = _column_energies((x + pad, y), shifted, offsets, 300 + 2 * pad)
    far = pad + 1000
    b = _column_energies((x + far, y), slope - (0.0, 0.0, slope[0] * far), offsets, 300 + 2 * far)
    np.testing.assert_allclose(a, b, rtol=1e-9)
    assert _sweep_reach([(np.zeros(0), np.zeros(0))], slope, 0.3) == 2


def test_no_margins_no_prominence(rect):
    from stntool.rectify import _Ink

    noise = np.random.default_rng(1).integers(0, 256, (500, 400), dtype=np.uint8)
    _, prominence = rect._margin_shear(_Ink(noise, 1280), np.eye(3), 0.0, 0.0)
    assert prominence < 1.2


def test_a_coarse_search_far_from_the_net_gets_a_second_opinion_on_the_fine_image(page, monkeypatch):
    """When the coarse search ends far from the net's angle (small print leaves the coarse image without text
    lines), the net's neighbourhood is searched on the fine image and the sharper angle wins: a coarse search
    forced 8° off still gives the right angle (its text evidence, read at the coarse angle, is low: any θ is
    taken, as the benchmarks take them)."""
    rect = Rectifier("text", family="rotation", min_confidence=0.0)
    img, d = distort(page, 12.0)
    bracket = rect._bracket

    def misled(energy, ink, base, ang, shear, which, *args):
        x = bracket(energy, ink, base, ang, shear, which, *args)
        return x + 8.0 if which == "angle" else x

    monkeypatch.setattr(rect, "_bracket", misled)
    theta, _ = rect.estimate(img)
    assert residual(d, theta, img.shape) < 0.1
    # without the second opinion (and with one climb of the fine searches, which go on from their reach
    # otherwise and would come back part of the way on their own): 8° off
    monkeypatch.setattr("stntool.rectify._SECOND_OPINION_AFTER", 90.0)
    monkeypatch.setattr("stntool.rectify._FINE_CLIMBS", 1)
    theta, _ = rect.estimate(img)
    assert residual(d, theta, img.shape) > 5.0


def test_a_large_page_gets_its_working_images_from_one_resize(page):
    """The net's working image of a page larger than the upright working image is that image halved (one
    resize of the page, not two): within a few grey levels of the working image made from the page itself,
    equal to it for a page no larger; a page three times the sample's size is straightened as the sample is."""
    import cv2

    from stntool import pageview as pv
    from stntool.rectify import _Lines

    big = cv2.resize(page, None, fx=3.0, fy=3.0, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape) > pv.UPRIGHT_WORK >= max(page.shape)
    for img, exact in ((page, True), (big, False)):
        lines = _Lines(img, "cpu")
        work = lines.net_work()
        want = pv.working_image(img)
        assert work.shape == want.shape == (pv.WORK, pv.WORK) and work.dtype == np.float32
        if exact:
            np.testing.assert_array_equal(work, want)
            assert lines.work is None  # made only when the upright head asks
        else:
            assert lines.work is not None and np.abs(work - want).max() < 0.05 and np.abs(work - want).mean() < 0.002
            np.testing.assert_allclose(cv2.resize(lines.work, (pv.WORK, pv.WORK), interpolation=cv2.INTER_AREA), work)
    distorted, inv = distort(big, 9.0)
    theta, _ = Rectifier("text", family="rotation").estimate(distorted)
    assert residual(inv, theta, big.shape) < 0.1


def test_median_test_and_profile_sums_match_numpy():
    """The line profile's light-or-dark test is ``np.median(a) < 0.5`` (ties at 0.5, the two middle values of
    an even count either side of it); the profile energies' sums are NumPy's float64 sums."""
    import stntool.pageview as pv
    from stntool.rectify import _sums

    rng = np.random.default_rng(7)
    values = np.array([0.1, 0.4999999, 0.5, 0.5000001, 0.9, 0.49, 0.51], np.float32)
    for _ in range(3000):
        a = rng.choice(values, (1, int(rng.integers(1, 12))))
        assert pv._median_below_half(a) == bool(np.median(a) < 0.5), a
    img = rng.random((61, 47)).astype(np.float32)
    for axis in (0, 1):
        np.testing.assert_allclose(_sums(img, axis), img.sum(axis=axis, dtype=np.float64), rtol=1e-12)
        assert _sums(img, axis).shape == (img.shape[1 - axis],)


@pytest.mark.parametrize("turn", [0, 1, 2, 3])
def test_the_wide_sweep_reads_rows_of_narrower_ink_and_finds_the_same_angle(rect, page, turn):
    """The wide first sweep takes row profiles of the ink shrunk along the rows of the page made straight:
    along input x for an upright or upside-down page, along input y for one turned a quarter; its best point
    over ±6° in 0.5° steps is within a step of the full ink's and within the next sweep's span (±0.5°) of the
    angle that straightens a page turned by a known one."""
    from stntool.rectify import _ROWS_SHRINK, _Ink, _shape_theta

    img = np.ascontiguousarray(np.rot90(distort(page, 2.3)[0], turn))
    ink = _Ink(img, 512)
    base = _shape_theta(90.0 * turn, 0.0)  # undoes the quarter turns in the square frame
    field = ink.rows(base @ _shape_theta(0.0, 0.0))
    h, w = ink.ink.shape
    assert field == ("rows_x" if turn % 2 == 0 else "rows_y")
    narrow = (h, round(w / _ROWS_SHRINK)) if turn % 2 == 0 else (round(h / _ROWS_SHRINK), w)
    assert getattr(ink, field).shape == narrow
    angles = np.arange(-6.0, 6.01, 0.5)
    wide = [rect._wide_row_energy(ink, base @ _shape_theta(a, 0.0)) for a in angles]
    full = [rect._row_energy(ink, base @ _shape_theta(a, 0.0)) for a in angles]
    assert abs(int(np.argmax(wide)) - int(np.argmax(full))) <= 1
    assert abs(angles[np.argmax(wide)] - (-2.3)) <= 0.5  # θ's angle turns back the page's 2.3°


def test_a_shear_that_lines_up_the_ends_no_better_than_none_is_none(rect, page, monkeypatch):
    """The margin search leaves an unsheared page unsheared: where no shear lines up the line ends as well
    (within ``_ZERO_SHEAR``) as the best one found, it says 0 exactly; a real shear is kept."""
    import stntool.rectify as R
    from stntool.pageview import page_theta
    from stntool.rectify import _Ink, _shape_theta

    raws = []
    for degrees in (2.0, 3.0, -4.0):
        ink = _Ink(distort(page, degrees)[0], 1280)
        monkeypatch.setattr(R, "_ZERO_SHEAR", 1.01)  # never: the search's own best
        raw, _ = rect._margin_shear(ink, np.eye(3), -degrees, 0.0)  # θ's angle turns the page back
        monkeypatch.setattr(R, "_ZERO_SHEAR", 0.98)
        snapped, _ = rect._margin_shear(ink, np.eye(3), -degrees, 0.0)
        assert abs(raw) < 3e-3 and snapped == 0.0
        raws.append(raw)
    assert any(raw != 0.0 for raw in raws)  # the search's own noise, which the rule takes away
    sheared = stntool.warp(_ruled_page(), page_theta(_shape_theta(0.0, -0.05)[:2], (600, 480)), padding="border")
    kept, _ = rect._margin_shear(_Ink(sheared, 1280), np.eye(3), 0.0, 0.0)
    assert abs(kept - 0.05) < 2e-3


def _skewed(page, degrees, move=(0.37, 0.21)):
    """The page turned by ``degrees`` about its centre and moved by a fraction of a pixel (a scan's own)."""
    h, w = page.shape[:2]
    c = ((w - 1) / 2, (h - 1) / 2)
    fwd = tf.translate(c[0] + move[0], c[1] + move[1]) @ tf.rotate(degrees) @ tf.translate(-c[0], -c[1])
    fill = [float(v) for v in np.median(page[0], axis=0)] if page.ndim == 3 else float(np.median(page[0]))
    return stntool.warp(page, tf.theta_from_pixel_map(fwd, (h, w)), padding="constant", fill=fill), fwd


def test_the_fine_profile_is_not_drawn_to_the_pixel_rows(rect, text_page, monkeypatch):
    """A page turned 0.2° at a sub-pixel offset: the row profile read one row per pixel is sharpest at 0°
    (where the rows fall on the image's pixel rows and are read without interpolation blur), the one read
    two rows per pixel, on and between the pixel rows (``_fine_row_energy``), at the page's own angle."""
    import stntool.rectify as R
    from stntool.rectify import _Ink, _shape_theta

    img, _ = _skewed(text_page, 0.2)
    ink = _Ink(img, 1280, blur=0.0)
    angles = np.round(np.arange(-0.4, 0.101, 0.01), 4)  # θ's angle -0.2 turns the page back
    fine = angles[np.argmax([rect._fine_row_energy(ink, _shape_theta(a, 0.0)) for a in angles])]
    one = angles[np.argmax([rect._row_energy(ink, _shape_theta(a, 0.0)) for a in angles])]
    assert abs(fine - (-0.2)) <= 0.03
    assert abs(one - (-0.2)) >= 0.1
    monkeypatch.setattr(R, "_FINE_ROWS", 1)
    monkeypatch.setattr(R, "_FINE_SHIFT", 0.0)  # one row per pixel, on the pixel rows: _row_energy
    assert rect._fine_row_energy(ink, _shape_theta(0.1, 0.0)) == rect._row_energy(ink, _shape_theta(0.1, 0.0))
    with pytest.raises(ValueError):
        rect._profile_energy(ink, _shape_theta(0.1, 0.0), "ink", 1, True, rows_per_pixel=2)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
def test_a_straight_page_comes_back_exactly_straight(text_page, turns):
    """A page scanned straight (or a quarter turn of one) gets exactly the quarter turn as θ: no turn of a
    few hundredths of a degree, and, upright, the output is the input."""
    from stntool.pageview import page_theta, quarter_theta

    img = np.ascontiguousarray(np.rot90(text_page, turns))
    theta, conf, info = Rectifier("text").estimate(img, details=True)
    assert info["quarter_turns"] == turns and conf > 0.9
    assert np.allclose(theta, page_theta(quarter_theta(-turns), img.shape[:2]), rtol=0, atol=1e-12)
    if turns == 0:
        assert np.array_equal(theta, np.eye(3)[:2]) and np.array_equal(stntool.warp(img, theta), img)


@pytest.mark.parametrize("degrees", [-0.2, 0.15, 0.2])
def test_a_page_skewed_a_fraction_of_a_degree_is_turned_back(text_page, degrees, monkeypatch):
    """Skews of a fraction of a degree (a scanner's; 0.15° moves the far end of a 520-pixel row by 1.4 pixels)
    are undone, not taken for a straight page. Read one row per pixel on the page at its own size, the
    profile drew them to straight; on the page enlarged to the fine image's size (as the refinement does with
    a page this small), even one row per pixel no longer does."""
    import stntool.rectify as R

    img, fwd = _skewed(text_page, degrees)
    theta, _ = Rectifier("text", family="rotation").estimate(img)
    assert residual(np.linalg.inv(fwd), theta, img.shape[:2]) < 0.05
    monkeypatch.setattr(R, "_FINE_ROWS", 1)
    monkeypatch.setattr(R, "_FINE_SHIFT", 0.0)
    theta, _ = Rectifier("text", family="rotation").estimate(img)
    assert residual(np.linalg.inv(fwd), theta, img.shape[:2]) < 0.05
    monkeypatch.setattr(R, "_REFINE_LONG", max(img.shape[:2]))  # the page's own size: nothing enlarged
    theta, _ = Rectifier("text", family="rotation").estimate(img)
    assert residual(np.linalg.inv(fwd), theta, img.shape[:2]) > 0.5 * abs(degrees)


def test_page_theta_between_sizes():
    """Equal sizes: page_theta. Swapped sizes: the square frame's quarter turn is exactly a signed permutation,
    and warping by it is np.rot90; a rotation stays a rotation in pixels (a square frame turned in pixels)."""
    from stntool.pageview import page_theta, page_theta_between, quarter_theta
    from stntool.rectify import _shape_theta
    from stntool.transforms import pixel_map_from_theta, to_3x3

    rng = np.random.default_rng(3)
    for hw in ((48, 36), (20, 20), (37, 91)):
        t = np.vstack([rng.normal(size=(2, 3)), [0.1, -0.2, 1.0]])
        assert np.allclose(page_theta_between(t, hw, hw), page_theta(t, hw), rtol=0, atol=1e-14)
    img = rng.integers(0, 255, (36, 48, 3), dtype=np.uint8)
    for k in (1, 3):
        theta = page_theta_between(to_3x3(quarter_theta(k)), img.shape[:2], img.shape[1::-1])[:2]
        assert set(np.abs(theta[:, :2]).ravel()) == {0.0, 1.0}
        assert np.array_equal(stntool.warp(img, theta, out_hw=img.shape[1::-1]), np.rot90(img, k))
    m = pixel_map_from_theta(page_theta_between(to_3x3(quarter_theta(1)) @ _shape_theta(2.0, 0.0), (36, 48),
                                                (48, 36)), (36, 48), (48, 36))
    u, s, vt = np.linalg.svd(m[:2, :2])
    assert np.allclose(s, 1.0) and abs(math.degrees(math.atan2((u @ vt)[1, 0], (u @ vt)[0, 0]))) == pytest.approx(92.0)
    with pytest.raises(ValueError):
        page_theta_between(np.eye(3), (36, 48), (36, 40))


def test_parabola_fit_finds_the_peak_of_noisy_energies():
    """The shear's peak is read off a parabola fitted to seven points of the fine sweep: exact for a parabola,
    steadier than the three points around the best when the energies are lumpy; the three-point parabola where
    the fit has too few points or does not open downwards."""
    from stntool.rectify import _parabola_fit, _parabola_top

    xs = 0.01 + 0.0005 * np.arange(21)
    top = xs[9] + 0.00021
    es = 100.0 - 3e5 * (xs - top) ** 2
    assert _parabola_fit(xs, es, 9, 3) == pytest.approx(top, abs=1e-12)
    # lumps of +-0.5% on every other point: the three points around the best move the peak, the fit much less
    lumpy = es * (1.0 + 0.005 * (-1.0) ** np.arange(21))
    i = int(np.argmax(lumpy))
    three = _parabola_top(xs[i], xs[1] - xs[0], lumpy[i - 1], lumpy[i], lumpy[i + 1])
    assert abs(_parabola_fit(xs, lumpy, i, 3) - top) < 0.5 * abs(three - top)
    # at the sweep's first point: too few points for a fit, none either side for three: the point itself
    assert _parabola_fit(xs, es[::-1], 20, 3) == pytest.approx(xs[20])
    assert _parabola_fit(xs[:4], es[:4], 2, 3) == _parabola_top(xs[2], xs[1] - xs[0], *es[1:4])
    cup = 100.0 + 3e5 * (xs - xs[9]) ** 2 + np.r_[np.zeros(9), 200.0, np.zeros(11)]  # the fit opens upwards
    assert _parabola_fit(xs, cup, 9, 3) == _parabola_top(xs[9], xs[1] - xs[0], *cup[8:11])
    beyond = 100.0 - 3e5 * (xs - xs[9] - 0.003) ** 2  # the fitted peak lies beyond the seven points
    beyond[10] += 0.5  # (and the three points' peak differs from the fit's)
    assert _parabola_fit(xs, beyond, 9, 3) == _parabola_top(xs[9], xs[1] - xs[0], *beyond[8:11])


@pytest.mark.parametrize("kwargs, said", [({"model": 123}, "model must be"), ({"model": None}, "model must be"),
                                          ({"min_confidence": "0.5"}, "min_confidence"),
                                          ({"min_confidence": 2.0}, "min_confidence"),
                                          ({"iterations": 2.5}, "iterations"), ({"iterations": 0}, "iterations"),
                                          ({"iterations": True}, "iterations"), ({"backend": "bogus"}, "backend")])
def test_bad_arguments_are_one_clear_error(kwargs, said):
    with pytest.raises(InvalidArgumentError, match=said):
        Rectifier(**kwargs)


def _hershey_page(h, w, scale, seed=5):
    """A page of OpenCV's Hershey stroke-font text, unlike the pages the shipped net learnt from."""
    import cv2

    words = "the quick brown fox jumps over lazy dog lorem ipsum dolor sit amet page report table figure".split()
    rng, img, font = np.random.default_rng(seed), np.full((h, w), 255, np.uint8), cv2.FONT_HERSHEY_SIMPLEX
    lh = cv2.getTextSize("Ag", font, scale, 1)[0][1]
    y = int(h * 0.08) + lh
    while y < h * 0.92:
        x = int(w * 0.08)
        while True:
            word = words[rng.integers(len(words))]
            tw = cv2.getTextSize(word + " ", font, scale, 1)[0][0]
            if x + tw > w * 0.92:
                break
            cv2.putText(img, word, (x, y), font, scale, 0, 1, cv2.LINE_AA)
            x += tw
        y += 2 * lh
    return img


def test_a_straight_page_the_net_reads_far_off_comes_back_straight(rect):
    """The net put a straight page of Hershey text at -12.6° with a shear of 0.18: the searches stopped on a lesser
    peak at -4.2° (the page came back turned, at confidence 0.81), and the net's two looks composed left a 1% stretch.
    The square is sharper, so the angle is climbed from there; the families keep no scale."""
    page = _hershey_page(400, 300, 0.4)
    theta, conf, info = rect.estimate(page, details=True)
    assert info["reason"] is None and np.array_equal(theta, np.eye(3)[:2]), (theta, conf)


@pytest.mark.parametrize("seed", [3, 6])
@pytest.mark.parametrize("border, grey", [(30, 0), (60, 0), (50, 80)])
def test_a_scan_with_a_dark_border_is_read_as_text(seed, border, grey):
    """A scanner's dark border darkens the ink beside the page's edges: a few columns of the column profile,
    which oscillated as much as the text lines' rows, and the page came back unchanged at confidence 0."""
    import cv2

    page = heldout_page(seed, size=(1000, 760))
    bordered = cv2.copyMakeBorder(page, border, border, border, border, cv2.BORDER_CONSTANT, value=grey)
    img, d = distort(bordered, -4.0)
    theta, conf, info = Rectifier("text").estimate(img, details=True)
    assert conf > 0.9 and info["reason"] is None, info
    assert residual(d, theta, img.shape) < 0.1


def test_a_page_on_a_plain_desk_is_read_as_text():
    """The page's edges on a darker desk: the same columns (and rows) of ink beside them."""
    page = heldout_page(3, size=(1000, 760))
    h, w = page.shape
    desk = np.full((int(h * 1.35), int(w * 1.4)), 70, np.uint8)
    top, left = (desk.shape[0] - h) // 2, (desk.shape[1] - w) // 2
    desk[top:top + h, left:left + w] = page
    img, d = distort(desk, 5.0)
    theta, conf, info = Rectifier("text").estimate(img, details=True)
    assert conf > 0.9 and info["reason"] is None, info
    assert residual(d, theta, img.shape) < 0.1


def test_by_default_a_page_whose_quarter_turn_is_less_than_even_odds_is_left_unchanged(page, monkeypatch):
    # at the former default of 0.3, a quarter head 0.40-0.47 sure turned photos of buildings on their side;
    # on validation pages 0.5 kept one page fewer straightened right and four fewer left wrong
    img, d = distort(page, 7.0)
    unsure = np.array([0.45, 0.3, 0.0, 0.25])
    monkeypatch.setattr(Rectifier, "_quarter_probabilities", lambda self, work: unsure)
    monkeypatch.setattr(Rectifier, "_second_look", lambda self, lines, k, prob, theta_sq: (k, prob, theta_sq))
    theta, conf, info = Rectifier("text").estimate(img, details=True)
    assert conf == pytest.approx(0.45) and info["reason"].startswith("low confidence 0.45 < 0.5"), info["reason"]
    assert np.array_equal(theta, np.eye(3)[:2])
    theta, conf, info = Rectifier("text", min_confidence=0.3).estimate(img, details=True)
    assert info["reason"] is None and residual(d, theta, img.shape) < 0.1


@pytest.mark.parametrize("channels", [2, 4])
def test_a_page_of_text_in_its_alpha_alone_is_read_as_it_shows_over_paper(channels):
    # black text on a transparent background (RGB 0 everywhere, the text in the alpha) was read as a black,
    # blank page: confidence 0 and no turn; it is the page composited over white, which is straightened
    import cv2

    from stntool.pages import render_page
    from stntool.rectify import Rectifier

    g = render_page(5, degrade=False, kind="book")
    h, w = g.shape
    page = np.zeros((h, w, channels), np.uint8)
    page[..., -1] = 255 - g
    page = cv2.warpAffine(page, cv2.getRotationMatrix2D((w / 2, h / 2), 5, 1), (w, h))
    alpha = page[..., -1:] / 255.0
    shown = np.round(page[..., :1] * alpha + 255 * (1 - alpha)).astype(np.uint8)[..., 0]
    rect = Rectifier("text")
    theta, confidence = rect.estimate(page)
    want, want_conf = rect.estimate(shown)
    assert confidence > 0.9 and abs(confidence - want_conf) < 1e-6
    np.testing.assert_allclose(theta, want, atol=2e-4)
    assert abs(np.degrees(np.arctan2(theta[1, 0], theta[0, 0]))) > 1  # turned, not the identity
