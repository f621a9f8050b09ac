"""Contact sheets: layout arithmetic, the warped grid against exact geometric oracles, display conversion."""

import math

import cv2
import numpy as np
import pytest

from stntool.errors import InvalidArgumentError
from stntool.maps import in_from_out
from stntool.preview import SheetLayout, contact_sheet, display_bgr, fit_hw, grid_pattern, warped_grid
from stntool.records import Elastic, TpsPoints, WarpSpec, apply_spec

IDENTITY = WarpSpec(theta=((1, 0, 0), (0, 1, 0)))
HFLIP = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)))
VFLIP = WarpSpec(theta=((1, 0, 0), (0, -1, 0)))
ROT90 = WarpSpec(theta=((0, -1, 0), (1, 0, 0)))  # square images: out[i, j] = in[j, W-1-i] = np.rot90(in)
MAGENTA = (255, 0, 255)


def caption_band(lines, font_scale=0.4):
    """The caption band height the module documents: lines * line height + 2 * 3 px padding."""
    (_, th), base = cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
    return lines * (th + base + 2) + 6


def tile_of(sheet, layout, r, c, hw):
    y0, x0, h, w = layout.image_box(r, c, hw)
    return sheet[y0:y0 + h, x0:x0 + w]


def bilinear_zeros(img, pts):
    """Independent bilinear sampling of a 2-D image at pixel points (x, y), zeros outside."""
    h, w = img.shape
    x, y = pts[..., 0], pts[..., 1]
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    out = np.zeros(x.shape)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            ok = (yy >= 0) & (yy < h) & (xx >= 0) & (xx < w)
            out += np.where(ok, wy * wx * img[np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)], 0.0)
    return out


# --------------------------------------------------------------------------- layout

class TestLayout:
    def test_fit_hw_keeps_aspect_and_fills_the_tile(self):
        assert fit_hw((100, 400), 256) == (64, 256)
        assert fit_hw((400, 100), 256) == (256, 64)
        assert fit_hw((10, 5), 64) == (64, 32)  # enlarged too
        assert fit_hw((3, 1000), 64) == (1, 64)  # never below one pixel
        assert fit_hw((256, 256), 256) == (256, 256)

    def test_sheet_size_arithmetic(self):
        img_a = np.zeros((30, 60, 3), np.uint8)
        img_b = np.zeros((50, 20), np.uint8)
        rows = [("a", img_a, [(IDENTITY, img_a, "0")]),
                ("b", img_b, [(IDENTITY, img_b, "0"), (HFLIP, img_b[:, ::-1], "1"), (VFLIP, img_b[::-1], "2")])]
        sheet = contact_sheet(rows, tile=64, gap=5, backend="numpy")
        # 4 columns (input + the most variants), 2 rows, one caption line
        assert sheet.shape == (5 + 2 * (64 + caption_band(1) + 5), 5 + 4 * (64 + 5), 3)
        assert sheet.dtype == np.uint8
        rows[1][2][1] = (HFLIP, img_b[:, ::-1], "1\nsecond line")
        assert contact_sheet(rows, tile=64, gap=5, backend="numpy").shape[0] == 5 + 2 * (64 + caption_band(2) + 5)
        rows[1][2][1] = (HFLIP, img_b[:, ::-1], "1\n2\n3\n4\n5")  # capped at max_caption_lines
        assert contact_sheet(rows, tile=64, gap=5, backend="numpy", max_caption_lines=3).shape[0] == \
            5 + 2 * (64 + caption_band(3) + 5)

    def test_images_are_centred_in_their_cells_and_the_rest_is_background(self):
        img = np.zeros((32, 64, 3), np.uint8)
        img[:] = (10, 20, 30)
        sheet = contact_sheet([("t", img, [(IDENTITY, img, "")])], tile=64, gap=4, background=(200, 200, 200),
                              input_grid_alpha=0, grid_alpha=0, backend="numpy")
        lay = SheetLayout(1, 2, 64, caption_band(1), 4)
        assert lay.image_box(0, 1, (32, 64)) == (4 + 16, 4 + 68, 32, 64)
        for c in (0, 1):
            y0, x0, h, w = lay.image_box(0, c, (32, 64))
            assert np.all(sheet[y0:y0 + h, x0:x0 + w] == (10, 20, 30))
            assert np.all(sheet[y0 - 16:y0] == 200) and np.all(sheet[y0 + h:y0 + h + 16] == 200)
        assert np.all(sheet[:4] == 200) and np.all(sheet[:, :4] == 200) and np.all(sheet[:, -4:] == 200)

    def test_captions_are_drawn_in_their_band_and_cut_to_the_cell(self):
        img = np.zeros((64, 64, 3), np.uint8)
        long = "0: rotate 12.5° scale 0.93 shear 4° θ " * 4
        sheet = contact_sheet([("", img, [(IDENTITY, img, long)])], tile=64, gap=8, background=(255, 255, 255),
                              backend="numpy")
        lay = SheetLayout(1, 2, 64, caption_band(1), 8)
        y, x = lay.cell(0, 1)
        band = sheet[y + 64:y + 64 + lay.caption]
        assert (band[:, x:x + 64] < 200).any()  # text in the variant's band
        assert np.all(band[:, x + 64:] == 255)  # ...cut before the gap
        y, x = lay.cell(0, 0)
        assert np.all(sheet[y + 64:y + 64 + lay.caption, x:x + 64] == 255)  # empty title: empty band


# --------------------------------------------------------------------------- the grid

class TestGrid:
    def test_pattern_lines_border_and_corner_marker(self):
        pat = grid_pattern((37, 91), grid_lines=3, thickness=1)
        assert pat.dtype == np.float32 and pat.shape == (37, 91)
        cols = [round(k * 90 / 4) for k in (1, 2, 3)]
        rows = [round(k * 36 / 4) for k in (1, 2, 3)]
        for x in cols + [0, 90]:
            assert np.all(pat[:, x] == 1)
        for y in rows + [0, 36]:
            assert np.all(pat[y, :] == 1)
        interior = np.ones_like(pat, bool)
        interior[:, cols + [0, 90]] = False
        interior[rows + [0, 36], :] = False
        leg = max(4, round(0.6 * 37 / 6))  # fewer than 5 lines: sized as for 5
        yy, xx = np.mgrid[0:37, 0:91]
        marker = xx + yy < leg
        assert np.all(pat[marker] == 1)
        assert np.all(pat[interior & ~marker] == 0)
        assert pat[0:leg, 0:leg].sum() > pat[0:leg, -leg:].sum()  # only the top-left corner is filled

    def test_corner_marker_stays_small_with_few_lines(self):
        for lines in (0, 1, 5):
            pat = grid_pattern((120, 120), grid_lines=lines)
            assert pat[1, 10] == 1 and pat[1, 11] == 0  # legs of round(0.6 * 120 / 6) = 12 px: x + y < 12
        assert grid_pattern((120, 120), grid_lines=8)[1, 6] == 1 and grid_pattern((120, 120), 8)[1, 7] == 0  # 8 px

    def test_pattern_thickness(self):
        pat = grid_pattern((40, 40), grid_lines=1, thickness=3)
        x = round(39 / 2) - 1
        assert np.all(pat[20:, x:x + 3] == 1) and not pat[25, x - 1] and not pat[25, x + 3]
        assert np.all(pat[:, -3:] == 1) and not pat[25, -4]

    @pytest.mark.parametrize("bad", [-1, 2.0, True])
    def test_pattern_rejects_bad_line_counts(self, bad):
        with pytest.raises(InvalidArgumentError, match="grid_lines"):
            grid_pattern((8, 8), grid_lines=bad)

    @pytest.mark.parametrize("backend", ["numpy", "cpu"])
    @pytest.mark.parametrize("hw", [(64, 64), (48, 80)])
    def test_identity_record_puts_the_grid_on_the_input_grid(self, backend, hw):
        pat = grid_pattern(hw, 8, 1)
        np.testing.assert_array_equal(warped_grid(IDENTITY, hw, 8, 1, backend=backend), pat)

    @pytest.mark.parametrize("backend", ["numpy", "cpu"])
    def test_flipped_and_rotated_records_flip_and_rotate_the_grid(self, backend):
        hw = (48, 80)
        pat = grid_pattern(hw, 8, 1)
        got = warped_grid(HFLIP, hw, 8, 1, backend=backend)
        np.testing.assert_array_equal(got, pat[:, ::-1])
        assert not np.array_equal(got, pat)  # the corner marker tells a flip from the identity
        np.testing.assert_array_equal(warped_grid(VFLIP, hw, 8, 1, backend=backend), pat[::-1])
        sq = grid_pattern((64, 64), 8, 1)
        np.testing.assert_array_equal(warped_grid(ROT90, (64, 64), 8, 1, backend=backend), np.rot90(sq))

    @pytest.mark.parametrize("spec", [
        WarpSpec(theta=((0.9, -0.2, 0.05), (0.25, 0.95, -0.1))),
        WarpSpec(theta=((1, 0.1, 0), (0.05, 1, 0), (0.25, 0.1, 1))),
        WarpSpec(tps=TpsPoints([[0, 0], [79, 0], [0, 59], [79, 59], [40, 30]],
                               [[3, 2], [77, -1], [1, 57], [80, 61], [44, 27]])),
        WarpSpec(theta=((1, 0, 0), (0, 1, 0)), elastic=Elastic(alpha=30.0, sigma=6.0, seed=7)),
        WarpSpec(theta=((1, 0, 0), (0, 1, 0)), align_corners=True, out_hw=(30, 100)),
    ], ids=["affine", "projective", "tps", "elastic", "other-size"])
    def test_grid_follows_the_records_map(self, spec):
        """The overlay at each output pixel is the input pattern at the point the record's map reads."""
        in_hw = (60, 80)
        got = warped_grid(spec, in_hw, 6, 2, backend="numpy")
        out_hw = spec.out_hw or in_hw
        assert got.shape == out_hw
        ys, xs = np.mgrid[0:out_hw[0], 0:out_hw[1]].astype(np.float64)
        src = in_from_out(spec, np.stack([xs, ys], -1), in_hw)
        want = bilinear_zeros(grid_pattern(in_hw, 6, 2).astype(np.float64), src)
        np.testing.assert_allclose(got, want, atol=0.02)
        assert want.max() > 0.999 and (want == 0).mean() > 0.3  # a real picture, not a blank one

    def test_grid_ignores_the_records_sampling_options(self):
        spec = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)), mode="nearest", padding="constant", fill="#ffffff")
        hw = (20, 30)
        np.testing.assert_array_equal(warped_grid(spec, hw, 3, 1, backend="numpy"), grid_pattern(hw, 3, 1)[:, ::-1])
        shrink = WarpSpec(theta=((2, 0, 0), (0, 2, 0)), padding="border")  # reads outside: zeros, not the border
        g = warped_grid(shrink, hw, 3, 1, backend="numpy")
        assert np.all(g[:, :5] == 0) and np.all(g[:4, :] == 0)

    def test_record_for_another_input_size_is_refused(self):
        with pytest.raises(InvalidArgumentError, match="30x20"):
            warped_grid(IDENTITY.replace(in_hw=(20, 30)), (21, 30))


# --------------------------------------------------------------------------- the grid on the sheet

class TestSheetGrid:
    def _sheet(self, img, spec, out, tile):
        return contact_sheet([("in", img, [(spec, out, "v")])], tile=tile, grid_lines=8, grid_colour=MAGENTA,
                             grid_alpha=0.9, input_grid_alpha=0.35, backend="numpy")

    @pytest.mark.parametrize("hw, tile", [((64, 64), 64), ((48, 80), 80), ((128, 160), 80)])
    def test_identity_overlay_lies_on_the_input_grid(self, hw, tile):
        img = np.zeros(hw + (3,), np.uint8)
        sheet = self._sheet(img, IDENTITY, img, tile)
        shown = fit_hw(hw, tile)
        lay = SheetLayout(1, 2, tile, caption_band(1), 8)
        a, b = tile_of(sheet, lay, 0, 0, shown), tile_of(sheet, lay, 0, 1, shown)
        assert np.all(a[..., 1] == 0) and np.all(b[..., 1] == 0)  # magenta over black: green stays 0
        np.testing.assert_array_equal(a[..., 0] > 0, b[..., 0] > 0)
        assert (b[..., 0] > 0).mean() > 0.1
        assert b[..., 0].max() == round(0.9 * 255) and a[..., 0].max() == round(0.35 * 255)
        if shown == hw:
            np.testing.assert_array_equal(b[..., 0] > 0, grid_pattern(hw, 8, 1) > 0)

    def test_flipped_overlay_is_the_flipped_input_grid(self):
        img = np.zeros((48, 80, 3), np.uint8)
        sheet = self._sheet(img, HFLIP, img, 80)
        lay = SheetLayout(1, 2, 80, caption_band(1), 8)
        a, b = tile_of(sheet, lay, 0, 0, (48, 80)), tile_of(sheet, lay, 0, 1, (48, 80))
        np.testing.assert_array_equal(b[..., 0] > 0, (a[..., 0] > 0)[:, ::-1])
        assert not np.array_equal(b[..., 0] > 0, a[..., 0] > 0)

    def test_large_inputs_keep_lines_visible_after_shrinking(self):
        img = np.zeros((640, 800, 3), np.uint8)
        sheet = self._sheet(img, IDENTITY, img, 80)
        lay = SheetLayout(1, 2, 80, caption_band(1), 8)
        b = tile_of(sheet, lay, 0, 1, (64, 80)).astype(int)
        # every one of the 8 inner vertical lines shows as a clearly coloured column in the 80-px tile
        for k in range(1, 9):
            x = round(k * 799 / 9) * 80 / 800
            cols = b[20:44, int(x) - 1:int(x) + 2, 0]
            assert cols.max(axis=1).min() >= 100

    def test_missing_output_is_warped_here(self):
        rng = np.random.default_rng(0)
        img = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
        spec = WarpSpec(theta=((0.8, 0.3, 0.1), (-0.3, 0.8, 0)))
        kw = dict(tile=40, grid_alpha=0, input_grid_alpha=0, backend="numpy")
        a = contact_sheet([("x", img, [(spec, None, "v")])], **kw)
        b = contact_sheet([("x", img, [(spec, apply_spec(img, spec, backend="numpy"), "v")])], **kw)
        np.testing.assert_array_equal(a, b)

    def test_output_of_the_wrong_size_names_the_row_and_variant(self):
        img = np.zeros((20, 30, 3), np.uint8)
        with pytest.raises(InvalidArgumentError, match=r"row 0 \(in\), variant 1: .*30x20 .* 31x20"):
            contact_sheet([("in", img, [(IDENTITY, img, ""), (IDENTITY, np.zeros((20, 31, 3), np.uint8), "")])])

    def test_bad_arguments(self):
        img = np.zeros((8, 8), np.uint8)
        with pytest.raises(InvalidArgumentError, match="at least one input"):
            contact_sheet([])
        with pytest.raises(InvalidArgumentError, match="tile"):
            contact_sheet([("a", img, [])], tile=4)
        with pytest.raises(InvalidArgumentError, match="row 0"):
            contact_sheet([("a", img)])
        with pytest.raises(InvalidArgumentError, match="variant 0"):
            contact_sheet([("a", img, [(IDENTITY, img)])])
        # a negative gap and an out-of-range colour raised NumPy's errors; NumPy integers were refused
        for kw, msg in ((dict(gap=-5), "gap must be an integer >= 0"), (dict(tile=8.0), "tile must be an integer"),
                        (dict(background=(300, 0, 0)), "background must be three numbers 0-255"),
                        (dict(grid_colour="red"), "grid_colour must be three numbers"),
                        (dict(box_colour=(0, 0, float("nan"))), "box_colour")):
            with pytest.raises(InvalidArgumentError, match=msg):
                contact_sheet([("a", img, [])], **kw)
        assert np.array_equal(contact_sheet([("a", img, [])], tile=np.int64(64), grid_lines=np.int64(3)),
                              contact_sheet([("a", img, [])], tile=64, grid_lines=3))

    def test_labels_are_drawn_where_they_lie_and_move_with_the_pixels(self):
        # a box and a keypoint on the input; the flipped variant's labels (moved by its record) on the mirror
        from stntool.labels import Labels, transform_labels

        img = np.zeros((48, 80, 3), np.uint8)
        labels = Labels(keypoints=[[60.0, 10.0]], boxes=[[9.5, 19.5, 29.5, 39.5]])
        moved, _ = transform_labels(labels, HFLIP, (48, 80))
        kw = dict(tile=80, grid_alpha=0, input_grid_alpha=0, box_colour=(0, 255, 0), keypoint_colour=(0, 0, 255),
                  backend="numpy")
        sheet = contact_sheet([("in", img, [(HFLIP, img[:, ::-1], "v", moved)], labels)], **kw)
        assert img.max() == 0  # drawn on a copy
        lay = SheetLayout(1, 2, 80, caption_band(1), 8)
        a, b = tile_of(sheet, lay, 0, 0, (48, 80)), tile_of(sheet, lay, 0, 1, (48, 80))
        for tile, (x0, x1), kx in ((a, (10, 29), 60), (b, (50, 69), 19)):
            green = tile[..., 1] > 100
            ys, xs = np.nonzero(green)
            assert abs(xs.min() - x0) <= 1 and abs(xs.max() - x1) <= 1 and abs(ys.min() - 20) <= 1, (xs, ys)
            assert abs(ys.max() - 39) <= 1 and not green[25:35, x0 + 3:x1 - 3].any()  # an outline
            red = tile[..., 2] > 100
            ys, xs = np.nonzero(red)
            assert red.any() and abs(xs.mean() - kx) <= 1 and abs(ys.mean() - 10) <= 1
        plain = contact_sheet([("in", img, [(HFLIP, img[:, ::-1], "v")])], **kw)
        assert tile_of(plain, lay, 0, 0, (48, 80)).max() == 0 and tile_of(plain, lay, 0, 1, (48, 80)).max() == 0
        with pytest.raises(InvalidArgumentError, match="labels must be a stntool.labels.Labels"):
            contact_sheet([("in", img, [], [[1, 2]])])
        # far-out labels (a sidecar's junk): boxes clipped to the picture, keypoints outside it left out (cv2's
        # fixed-point coordinates overflowed: an error after the whole batch)
        far = Labels(keypoints=[[1e9, 5.0], [-1e300, -1e300], [10.0, 10.0]],
                     boxes=[[-1e12, 2.0, 20.0, 20.0], [-1e308, 0.0, 1e308, 10.0], [500.0, 500.0, 600.0, 600.0]])
        sheet = contact_sheet([("in", img, [], far)], **kw)
        a = tile_of(sheet, lay, 0, 0, (48, 80))
        green, red = a[..., 1] > 100, a[..., 2] > 100
        assert green[:, 0].any() and green[:, -1].any() and not green[40:].any()  # both clipped boxes, not the third
        line = contact_sheet([("in", img, [], Labels(boxes=[[9.5, 19.5, 9.5, 39.5]]))], **kw)  # a YOLO box of width 0
        green = tile_of(line, lay, 0, 0, (48, 80))[..., 1] > 100
        assert green[20:40, 9:11].any(axis=1).all() and not green[:, 12:].any()
        ys, xs = np.nonzero(red)
        assert abs(xs.mean() - 10) <= 1 and abs(ys.mean() - 10) <= 1  # the one keypoint inside

    def test_row_without_variants(self):
        img = np.zeros((8, 8), np.uint8)
        sheet = contact_sheet([("a", img, [])], tile=16, gap=2)
        assert sheet.shape == (2 + 16 + caption_band(1) + 2, 2 + 18, 3)


# --------------------------------------------------------------------------- display conversion

class TestDisplay:
    def test_uint8_bgr_is_kept_in_its_channel_order(self):
        img = np.zeros((4, 4, 3), np.uint8)
        img[:] = (10, 20, 30)
        np.testing.assert_array_equal(display_bgr(img), img)

    @pytest.mark.parametrize("img", [np.full((4, 5), 77, np.uint8), np.full((4, 5, 1), 77, np.uint8)])
    def test_grey_repeats_over_three_channels(self, img):
        out = display_bgr(img)
        assert out.shape == (4, 5, 3) and np.all(out == 77)

    def test_uint16_shows_its_high_byte(self):
        img = np.array([[0x1234, 0xFFFF, 0x00FF, 0x0100]], np.uint16)
        np.testing.assert_array_equal(display_bgr(img)[0, :, 0], [0x12, 0xFF, 0x00, 0x01])

    @pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
    def test_float_is_clipped_to_the_unit_range(self, dtype):
        img = np.array([[0.0, 0.5, 1.0, 1.7, -0.3, np.nan, 0.2]], dtype)
        np.testing.assert_array_equal(display_bgr(img)[0, :, 1], [0, 128, 255, 255, 0, 0, round(0.2 * 255)])

    def test_alpha_composites_over_a_checkerboard(self):
        img = np.zeros((16, 16, 4), np.uint8)
        img[..., :3] = (0, 0, 200)
        img[:, :8, 3] = 255  # left half opaque
        img[:, 8:, 3] = 0  # right half transparent
        out = display_bgr(img).astype(int)
        assert np.all(out[:, :8] == (0, 0, 200))
        assert np.all(out[:8, 8:] == 204) and np.all(out[8:, 8:] == 255)  # squares of 8 px, (0, 8) grey
        half = img.copy()
        half[..., 3] = 128
        v = display_bgr(half).astype(int)[0, 0]  # over white: c * a + 255 * (1 - a)
        np.testing.assert_allclose(v, np.array([0, 0, 200]) * 128 / 255 + 255 * (1 - 128 / 255), atol=0.51)

    def test_grey_alpha_and_uint16_alpha(self):
        img = np.zeros((8, 8, 2), np.uint16)
        img[..., 0] = 0x8000
        img[..., 1] = 0xFFFF
        assert np.all(display_bgr(img) == 0x80)
        img[..., 1] = 0
        assert np.all(display_bgr(img) == 255)  # the white square of the checkerboard at (0, 0)

    def test_transparent_edges_have_no_dark_fringe_after_shrinking(self):
        img = np.zeros((64, 64, 4), np.uint8)
        img[..., :3] = 255  # white, but the colour under alpha 0 is black in some files
        img[:, 32:, :3] = 0
        img[:, :32, 3] = 255
        out = display_bgr(img, (8, 8)).astype(int)
        assert out.min() >= 204  # white and the checkerboard only

    def test_resizing(self):
        img = np.zeros((40, 80, 3), np.uint8)
        img[:, 40:] = 200
        out = display_bgr(img, (10, 20))
        assert out.shape == (10, 20, 3) and np.all(out[:, :10] == 0) and np.all(out[:, 10:] == 200)
        up = display_bgr(np.array([[0, 255]], np.uint8), (4, 8))  # enlarged: nearest, crisp pixels
        assert np.all(up[:, :4] == 0) and np.all(up[:, 4:] == 255)

    @pytest.mark.parametrize("img, msg", [
        (np.zeros((4, 4), np.int8), "dtype int8"),
        (np.zeros((4, 4), bool), "dtype bool"),
        (np.zeros((4, 4, 5), np.uint8), "C in 1..4"),
        (np.zeros((2, 4, 4, 3), np.uint8), "C in 1..4"),
    ])
    def test_unshowable_images(self, img, msg):
        with pytest.raises(InvalidArgumentError, match=msg):
            display_bgr(img)

    @pytest.mark.parametrize("make", [
        lambda: np.full((24, 32), 0.25, np.float32),
        lambda: np.full((24, 32, 3), 40000, np.uint16),
        lambda: np.full((24, 32, 4), 0.5, np.float64),
        lambda: np.full((24, 32, 2), 180, np.uint8),
    ], ids=["float32-grey", "uint16-bgr", "float64-bgra", "uint8-grey-alpha"])
    def test_every_dtype_makes_a_sheet(self, make):
        img = make()
        spec = WarpSpec(theta=((math.cos(0.3), -math.sin(0.3), 0), (math.sin(0.3), math.cos(0.3), 0)))
        sheet = contact_sheet([("x", img, [(spec, apply_spec(img, spec, backend="numpy"), "r")])], tile=32,
                              backend="numpy")
        lay = SheetLayout(1, 2, 32, caption_band(1), 8)
        assert sheet.shape == lay.shape and sheet.dtype == np.uint8
        pic = tile_of(sheet, lay, 0, 1, (24, 32)).astype(int)
        assert (np.abs(pic - MAGENTA).sum(-1) < 60).any()  # grid drawn
        assert (np.abs(pic - MAGENTA).sum(-1) > 200).any()  # ...over the picture


def test_the_augment_preview_keeps_tiles_not_images_and_draws_the_same_sheet(tmp_path):
    # it kept every input and variant at full size until the batch ended (1.4 GB for four 4000x3000 inputs)
    from types import SimpleNamespace

    from stntool.commands.augment import _Preview
    from stntool.labels import Labels

    rng = np.random.default_rng(4)
    sheet = _Preview(str(tmp_path / "s.png"))
    rows = []
    for i in (3, 0, 4, 1, 2):  # the four of least index are kept, whatever the order
        img = rng.integers(0, 256, (300 + 20 * i, 420, 3), dtype=np.uint8)
        item = SimpleNamespace(index=i, rel=f"a{i}.png", failed=False)
        labels = Labels(boxes=[[10, 20, 100, 120]], keypoints=[[50, 60]])
        variants = []
        for k in range(7):
            spec = WarpSpec(theta=((math.cos(k / 5), -math.sin(k / 5), 0.1 * k), (math.sin(k / 5), math.cos(k / 5), 0)),
                            out_hw=(200, 260 + k))
            out = apply_spec(img, spec, backend="numpy")
            sheet.add(item, img, spec, out, k, f"a{i}_{k}.png", labels, labels)
            variants.append((spec, out, f"a{i}_{k}.png", labels))
        rows.append((i, (f"a{i}.png", img, variants[:6], labels)))
    kept = [a for _, row in sheet.rows.values() for a in [row[1]] + [pic for pic, _ in row[2]]]
    assert sorted(sheet.rows) == [0, 1, 2, 3] and len(kept) == 4 * 7
    assert max(max(a.shape[:2]) for a in kept) <= 256
    assert sheet.write(None)
    want = contact_sheet([row for i, row in sorted(rows) if i < 4])
    assert np.array_equal(cv2.imread(str(tmp_path / "s.png")), want)


def test_a_preview_row_given_away_while_its_tile_is_made_stays_out(tmp_path, monkeypatch):
    # with --jobs > 1: input 5's row was given to input 3 and input 1 failed while 5's next tile was made;
    # 5 came back as a row without its input picture, and writing the sheet raised AttributeError
    from types import SimpleNamespace

    import stntool.preview as pv
    from stntool.commands.augment import _Preview

    sheet = _Preview(str(tmp_path / "s.png"))
    items = {i: SimpleNamespace(index=i, rel=f"a{i}.png", failed=False) for i in range(6)}
    img = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    spec = WarpSpec(theta=((1, 0, 0.1), (0, 1, 0)))
    out = apply_spec(img, spec, backend="numpy")
    for i in (0, 1, 2, 5):
        sheet.add(items[i], img, spec, out, 0, f"a{i}_000.png")
    real, window = pv.variant_tile, []

    def other_threads_meanwhile(*args, **kwargs):
        if not window:
            window.append(1)
            sheet.add(items[3], img, spec, out, 0, "a3_000.png")  # takes the row of 5, the largest
            items[1].failed = True  # and input 1 fails: there is room again
        return real(*args, **kwargs)

    monkeypatch.setattr(pv, "variant_tile", other_threads_meanwhile)
    sheet.add(items[5], img, spec, out, 1, "a5_001.png")
    sheet.add(items[5], img, spec, out, 2, "a5_002.png")
    assert sorted(sheet.rows) == [0, 2, 3]  # a row once left out stays out
    assert sheet.write(None)
    assert cv2.imread(str(tmp_path / "s.png")).shape == SheetLayout(3, 2, 256, caption_band(1), 8).shape
