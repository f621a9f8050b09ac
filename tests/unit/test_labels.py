"""Labels that move with the pixels: out_from_in against warped images and exact maps, boxes, files, masks."""

import json

import numpy as np
import pytest

from stntool import transforms as T
from stntool.errors import ImageWriteError, InvalidArgumentError
from stntool.labels import (Labels, check_mask, labels_from_yolo_text, out_from_in, read_labels_json, read_yolo,
                            transform_labels, warp_mask, write_labels_json, write_yolo, yolo_text)
from stntool.coords import pixel_to_norm
from stntool.maps import in_from_out
from stntool.records import Elastic, TpsPoints, WarpSpec, apply_spec

IN_HW = (44, 60)  # non-square
OUT_HW = (52, 48)  # and a different output size


def theta_spec(out_pix_from_in_pix, in_hw=IN_HW, out_hw=OUT_HW, align_corners=False, **kw):
    theta = T.theta_from_pixel_map(out_pix_from_in_pix, in_hw, out_hw, align_corners)
    return WarpSpec(theta=tuple(map(tuple, theta.tolist())), out_hw=out_hw, align_corners=align_corners, **kw)


def affine_map(in_hw=IN_HW, out_hw=OUT_HW):
    """Rotation + shear + anisotropic scale, input centre to output centre."""
    cin = ((in_hw[1] - 1) / 2, (in_hw[0] - 1) / 2)
    cout = ((out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2)
    return T.compose(T.translate(-cin[0], -cin[1]), T.scale(0.9, 1.1), T.shear(12, -7), T.rotate(23),
                     T.translate(cout[0] + 1.3, cout[1] - 0.7))


def projective_map(in_hw=IN_HW, out_hw=OUT_HW):
    h = affine_map(in_hw, out_hw)
    cout = ((out_hw[1] - 1) / 2, (out_hw[0] - 1) / 2)
    persp = np.array([[1, 0, 0], [0, 1, 0], [0.004, -0.003, 1.0]])  # about the output centre
    return T.compose(h, T.translate(-cout[0], -cout[1]), persp, T.translate(*cout))


def apply_h(m, pts):
    q = np.c_[pts, np.ones(len(pts))] @ m.T
    return q[:, :2] / q[:, 2:]


def tps_spec(in_hw=IN_HW, out_hw=OUT_HW, jitter=3.0, seed=1, **kw):
    """Pixel TpsPoints: a 3x3 lattice of input points moved to jittered places in the output."""
    rng = np.random.default_rng(seed)
    gy, gx = np.meshgrid(np.linspace(2, in_hw[0] - 3, 3), np.linspace(2, in_hw[1] - 3, 3), indexing="ij")
    src = np.stack([gx.ravel(), gy.ravel()], -1)
    scale = [(out_hw[1] - 1) / (in_hw[1] - 1), (out_hw[0] - 1) / (in_hw[0] - 1)]
    dst = src * scale + rng.uniform(-jitter, jitter, src.shape)
    return WarpSpec(tps=TpsPoints(src.tolist(), dst.tolist()), out_hw=out_hw, **kw), src, dst


def elastic_spec(alpha=8.0, sigma=6.0, seed=11, align_corners=False):
    return theta_spec(affine_map(), align_corners=align_corners, elastic=Elastic(alpha, sigma, seed))


def dot(hw, p, sigma=1.5):
    ys, xs = np.mgrid[0:hw[0], 0:hw[1]]
    return np.exp(-((xs - p[0]) ** 2 + (ys - p[1]) ** 2) / (2 * sigma ** 2)).astype(np.float32)


def centroid(img, radius=7):
    i, j = np.unravel_index(np.argmax(img), img.shape)
    ys, xs = np.mgrid[0:img.shape[0], 0:img.shape[1]]
    win = (np.abs(ys - i) <= radius) & (np.abs(xs - j) <= radius)
    w = np.where(win, img.astype(np.float64), 0.0)
    return np.array([(w * xs).sum(), (w * ys).sum()]) / w.sum()


def inner_points(spec, n=6, margin=7.0, seed=0):
    """Input points whose image lies at least ``margin`` px inside the output (so the dot is whole)."""
    rng = np.random.default_rng(seed)
    p = rng.uniform([6, 6], [IN_HW[1] - 7, IN_HW[0] - 7], (400, 2))
    q = out_from_in(spec, p, IN_HW)
    h, w = spec.out_hw
    ok = (np.isfinite(q).all(1) & (q[:, 0] > margin) & (q[:, 1] > margin) & (q[:, 0] < w - 1 - margin)
          & (q[:, 1] < h - 1 - margin))
    assert ok.sum() >= n
    return p[ok][:n], q[ok][:n]


# --------------------------------------------------------------------------- out_from_in

@pytest.mark.parametrize("align_corners", [False, True])
def test_theta_inverse_is_the_forward_pixel_map(align_corners):
    rng = np.random.default_rng(3)
    p = rng.uniform(-5, 70, (50, 2))
    for m in (affine_map(), projective_map()):
        spec = theta_spec(m, align_corners=align_corners)
        q = out_from_in(spec, p, IN_HW)
        ok = np.isfinite(q).all(1)
        assert ok.sum() >= 45
        np.testing.assert_allclose(q[ok], apply_h(m, p[ok]), atol=1e-9)
        np.testing.assert_allclose(in_from_out(spec, q[ok], IN_HW), p[ok], atol=1e-9)


def test_shape_is_kept_and_example():
    spec = theta_spec(affine_map())
    p = np.zeros((3, 4, 2)) + [10.0, 20.0]
    assert out_from_in(spec, p, IN_HW).shape == (3, 4, 2)
    zoom = WarpSpec(theta=((0.5, 0, 0), (0, 0.5, 0)))
    assert out_from_in(zoom, [[0.0, 0.0], [1.5, 1.5]], (4, 4)).tolist() == [[-1.5, -1.5], [1.5, 1.5]]


@pytest.mark.parametrize("family", ["affine", "affine_ac", "projective", "tps", "elastic", "elastic_strong"])
def test_a_label_lands_on_its_warped_pixel(family):
    """Render a dot at input points, warp it with the record, find it: out_from_in says where."""
    if family.startswith("affine"):
        spec = theta_spec(affine_map(), align_corners=family.endswith("ac"))
    elif family == "projective":
        spec = theta_spec(projective_map())
        assert spec.theta[2][:2] != (0.0, 0.0)
    elif family == "tps":
        spec = tps_spec()[0]
    elif family == "elastic":
        spec = elastic_spec(8.0, 6.0)
    else:
        spec = elastic_spec(100.0, 12.0, seed=3)
    p_in, p_out = inner_points(spec)
    if family.startswith("elastic"):  # the field moves the points: the test sees it
        plain = out_from_in(spec.replace(elastic=None), p_in, IN_HW)
        assert np.abs(plain - p_out).max() > (0.05 if family == "elastic" else 1.0)
    for a, b in zip(p_in, p_out):
        warped = apply_spec(dot(IN_HW, a), spec, backend="numpy")
        assert warped.shape == spec.out_hw
        assert np.hypot(*(centroid(warped) - b)) < 0.25, (family, a, b, centroid(warped))


def bilinear_at(img, q):
    """``img (H, W, C)`` interpolated bilinearly at pixel points ``q (P, 2)`` (inside)."""
    x0, y0 = np.floor(q[:, 0]).astype(int), np.floor(q[:, 1]).astype(int)
    fx, fy = (q[:, 0] - x0)[:, None], (q[:, 1] - y0)[:, None]
    return ((1 - fy) * ((1 - fx) * img[y0, x0] + fx * img[y0, x0 + 1])
            + fy * ((1 - fx) * img[y0 + 1, x0] + fx * img[y0 + 1, x0 + 1]))


@pytest.mark.parametrize("family", ["projective", "tps", "elastic", "elastic_violent"])
def test_a_label_reads_back_its_own_coordinates(family):
    """Warp an image whose pixels hold their own (x, y); at out_from_in(p) the warped image says p."""
    spec = {"projective": lambda: theta_spec(projective_map()), "tps": lambda: tps_spec(jitter=4.0)[0],
            "elastic": lambda: elastic_spec(150.0, 8.0, seed=5),
            "elastic_violent": lambda: elastic_spec(400.0, 8.0, seed=5)}[family]()
    ys, xs = np.mgrid[0:IN_HW[0], 0:IN_HW[1]].astype(np.float32)
    coords = np.stack([xs, ys, np.ones_like(xs)], -1)  # bilinear sampling reproduces them exactly
    warped = apply_spec(coords, spec.replace(padding="zeros"), backend="numpy").astype(np.float64)
    rng = np.random.default_rng(8)
    p = rng.uniform([0, 0], [IN_HW[1] - 1, IN_HW[0] - 1], (400, 2))
    q = out_from_in(spec, p, IN_HW)
    ok = (np.isfinite(q).all(1) & (q[:, 0] >= 0) & (q[:, 1] >= 0) & (q[:, 0] < OUT_HW[1] - 1)
          & (q[:, 1] < OUT_HW[0] - 1))
    assert ok.sum() > 100
    read = bilinear_at(warped, q[ok])
    ok_cells = read[:, 2] > 1 - 1e-6  # cells whose four pixels all read inside the input
    assert ok_cells.sum() > 100
    err = np.hypot(*(read[ok_cells, :2] - p[ok][ok_cells]).T)
    # what is left is bilinear interpolation of a curved map between output pixels
    assert err.max() < (0.03 if family != "elastic_violent" else 0.1)


@pytest.mark.parametrize("family", ["tps", "tps_ac", "elastic", "elastic_strong", "elastic_tps"])
def test_numerical_inverse_round_trips(family):
    if family.startswith("tps"):
        spec = tps_spec(jitter=4.0, align_corners=family.endswith("ac"))[0]
    elif family == "elastic":
        spec = elastic_spec(8.0, 6.0, align_corners=True)
    elif family == "elastic_strong":
        spec = elastic_spec(150.0, 8.0, seed=5)
    else:
        spec = tps_spec()[0].replace(elastic=Elastic(60.0, 5.0, 3))
    rng = np.random.default_rng(7)
    p = rng.uniform([-0.5, -0.5], [IN_HW[1] - 0.5, IN_HW[0] - 0.5], (300, 2))
    q = out_from_in(spec, p, IN_HW)
    h, w = OUT_HW
    inside = np.isfinite(q).all(1) & (q[:, 0] >= -0.5) & (q[:, 1] >= -0.5) & (q[:, 0] <= w - 0.5) & (
        q[:, 1] <= h - 0.5)
    assert inside.sum() > 150
    assert np.hypot(*(in_from_out(spec, q[inside], IN_HW) - p[inside]).T).max() < 0.01


@pytest.mark.parametrize("alpha, sigma, seed", [(150.0, 8.0, 5), (200.0, 6.0, 2)])
def test_folded_fields_still_find_a_place_for_every_point_read(alpha, sigma, seed):
    """Where the field folds, Newton from the affine start stalls; the restarts find a preimage for every
    input point that some output pixel reads."""
    spec = elastic_spec(alpha, sigma, seed=seed)
    ys, xs = np.mgrid[0:OUT_HW[0], 0:OUT_HW[1]]
    q = np.stack([xs.ravel(), ys.ravel()], -1).astype(float)
    p = in_from_out(spec, q, IN_HW)
    h = 1e-3
    jac = np.stack([in_from_out(spec, q + [h, 0], IN_HW) - p, in_from_out(spec, q + [0, h], IN_HW) - p], -1) / h
    assert (np.linalg.det(jac) < 0).mean() > 0.01  # the map really folds
    back = out_from_in(spec, p, IN_HW)
    assert np.isfinite(back).all()
    assert np.hypot(*(in_from_out(spec, back, IN_HW) - p).T).max() < 0.01


@pytest.mark.parametrize("family", ["tps", "elastic_tps"])
def test_restart_windows_flattened_at_the_edge_read_the_map_once_per_distinct_point(family):
    """A far point's restart window lies beyond the output and its margin: clipping flattens it to a line or a
    point, evaluated once per distinct point. The values are those of every grid point evaluated, bit for bit,
    and a box of +-1e7 px (its outline all far points) is settled as before: dropped, the keypoint lost."""
    from stntool.labels import _inverse_map, transform_labels

    spec = tps_spec(jitter=4.0)[0]
    if family == "elastic_tps":
        spec = spec.replace(elastic=Elastic(60.0, 5.0, 3))
    inv, _ = _inverse_map(spec, IN_HW, 1e-3)
    k, rng = 9, np.random.default_rng(3)
    lo = rng.uniform(-5, 40, (8, 2))
    hi = lo + rng.uniform(1, 30, (8, 2))
    hi[1:3, 0], hi[3:5, 1], hi[5:7] = lo[1:3, 0], lo[3:5, 1], lo[5:7]  # flat in x, in y, in both
    t = np.linspace(0.0, 1.0, k)
    gx, gy = lo[:, 0, None] + (hi[:, 0] - lo[:, 0])[:, None] * t, lo[:, 1, None] + (hi[:, 1] - lo[:, 1])[:, None] * t
    grid = np.stack(np.broadcast_arrays(gx[:, None, :], gy[:, :, None]), -1)
    every = inv.f(grid.reshape(-1, 2)).reshape(grid.shape)
    assert np.array_equal(inv._on_grid(grid, lo == hi), every)
    moved, info = transform_labels(Labels(keypoints=[[1e7, 5.0]], boxes=[[-1e7, -1e7, 1e7, 1e7]]), spec, IN_HW)
    assert np.isnan(moved.keypoints).all() and info.boxes_dropped == 1


@pytest.mark.parametrize("align_corners", [False, True])
def test_tps_control_points_land_on_their_targets(align_corners):
    spec, src, dst = tps_spec(jitter=4.0, align_corners=align_corners)
    np.testing.assert_allclose(out_from_in(spec, src, IN_HW), dst, atol=1e-6)
    # the same points given in normalized coordinates: the spline differs, the control points still land
    src_n = pixel_to_norm(src, IN_HW, align_corners)
    dst_n = pixel_to_norm(dst, OUT_HW, align_corners)
    norm = spec.replace(tps=TpsPoints(src_n.tolist(), dst_n.tolist(), normalized=True))
    np.testing.assert_allclose(out_from_in(norm, src, IN_HW), dst, atol=1e-6)
    mid = (src[:-1] + src[1:]) / 2  # between control points the two splines disagree (non-square output)
    assert np.abs(out_from_in(norm, mid, IN_HW) - out_from_in(spec, mid, IN_HW)).max() > 0.01


def test_projective_points_behind_the_horizon_are_nan():
    # out_pix_from_in_pix with w = 1 - x / 30: input x > 30 passes through infinity
    m = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1 / 30, 0, 1.0]])
    spec = theta_spec(m, in_hw=(48, 64), out_hw=(48, 64))
    q = out_from_in(spec, [[10.0, 10.0], [29.0, 5.0], [31.0, 5.0], [30.0, 5.0], [60.0, 40.0]], (48, 64))
    np.testing.assert_allclose(q[:2], [[15.0, 15.0], [870.0, 150.0]], rtol=1e-9)
    assert np.isnan(q[2:]).all()
    # the same map with θ negated (the same warp) gives the same answer
    neg = WarpSpec(theta=tuple(tuple(-v for v in r) for r in spec.theta), out_hw=(48, 64))
    np.testing.assert_array_equal(np.isnan(out_from_in(neg, q * 0 + [[31.0, 5.0]], (48, 64))), True)
    np.testing.assert_allclose(out_from_in(neg, [[10.0, 10.0]], (48, 64)), [[15.0, 15.0]], rtol=1e-9)


def test_singular_theta_gives_nan():
    spec = WarpSpec(theta=((1, 0, 0), (0, 0, 0)))  # every output row reads the input's middle row
    assert np.isnan(out_from_in(spec, [[1.0, 2.0]], (8, 8))).all()


# --------------------------------------------------------------------------- boxes and keypoints

def rot90_map(hw):
    """``out_pix_from_in_pix`` of ``np.rot90`` for an (H, W) image: (x, y) -> (y, W - 1 - x)."""
    return np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, hw[1] - 1.0], [0.0, 0.0, 1.0]])


@pytest.mark.parametrize("align_corners", [False, True])
def test_quarter_turn_and_flips_give_exact_boxes(align_corners):
    h, w = 6, 10
    img = np.arange(h * w, dtype=np.float32).reshape(h, w)
    boxes = [[-0.5, -0.5, w - 0.5, h - 0.5], [1.5, 0.5, 4.5, 3.5], [7.0, 2.25, 9.5, 5.5]]
    lab = Labels(keypoints=[[0, 0], [9, 1], [3.25, 4.5]], boxes=boxes, keypoint_labels=["a", "b", None],
                 box_labels=[0, 1, 2])
    cases = [(rot90_map((h, w)), (w, h), np.rot90(img)), (T.hflip(w), (h, w), img[:, ::-1]),
             (T.vflip(h), (h, w), img[::-1])]
    for m, out_hw, expected in cases:
        spec = theta_spec(m, in_hw=(h, w), out_hw=out_hw, align_corners=align_corners)
        np.testing.assert_array_equal(apply_spec(img, spec, backend="numpy"), expected)  # the record is the flip
        out, info = transform_labels(lab, spec, (h, w))
        b = np.array(boxes)
        if out_hw == (w, h):  # rot90: x' = y, y' = W - 1 - x
            want = np.c_[b[:, 1], w - 1 - b[:, 2], b[:, 3], w - 1 - b[:, 0]]
            kp = np.c_[lab.keypoints[:, 1], w - 1 - lab.keypoints[:, 0]]
        elif m[0, 0] == -1:
            want = np.c_[w - 1 - b[:, 2], b[:, 1], w - 1 - b[:, 0], b[:, 3]]
            kp = np.c_[w - 1 - lab.keypoints[:, 0], lab.keypoints[:, 1]]
        else:
            want = np.c_[b[:, 0], h - 1 - b[:, 3], b[:, 2], h - 1 - b[:, 1]]
            kp = np.c_[lab.keypoints[:, 0], h - 1 - lab.keypoints[:, 1]]
        np.testing.assert_allclose(out.boxes, want, atol=1e-12)
        np.testing.assert_allclose(out.keypoints, kp, atol=1e-12)
        assert out.box_labels == (0, 1, 2) and out.keypoint_labels == ("a", "b", None)
        assert out.visible.tolist() == [True, True, True]
        assert info.box_visibility == pytest.approx((1.0, 1.0, 1.0)) and info.boxes_dropped == 0
    # the whole-image box of the turned image is the whole output
    spec = theta_spec(rot90_map((h, w)), in_hw=(h, w), out_hw=(w, h))
    out, _ = transform_labels(Labels(boxes=[boxes[0]]), spec, (h, w))
    np.testing.assert_allclose(out.boxes, [[-0.5, -0.5, h - 0.5, w - 0.5]], atol=1e-12)


def test_affine_box_is_the_extent_of_its_warped_corners():
    m = affine_map()
    spec = theta_spec(m)
    box = np.array([[20.0, 12.0, 34.0, 25.0]])
    corners = np.array([[20, 12], [34, 12], [34, 25], [20, 25]], float)
    q = apply_h(m, corners)
    want = np.clip(np.r_[q.min(0), q.max(0)], -0.5, [OUT_HW[1] - 0.5, OUT_HW[0] - 0.5] * 2)
    out, info = transform_labels(Labels(boxes=box), spec, IN_HW)
    np.testing.assert_allclose(out.boxes[0], want, atol=1e-9)
    full = (q.max(0) - q.min(0)).prod()
    assert info.box_visibility[0] == pytest.approx((want[2] - want[0]) * (want[3] - want[1]) / full)


def test_projective_box_corners_and_a_box_across_the_horizon():
    m = projective_map()
    box = np.array([[18.0, 10.0, 40.0, 30.0]])
    q = apply_h(m, np.array([[18, 10], [40, 10], [40, 30], [18, 30]], float))
    out, _ = transform_labels(Labels(boxes=box), theta_spec(m), IN_HW)
    np.testing.assert_allclose(out.boxes[0], np.r_[q.min(0), q.max(0)], atol=1e-9)
    # x' = x / w, y' = y / w with w = 1 - x / 30: the part x < 30 of the box runs off to infinity
    hz = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1 / 30, 0, 1.0]])
    spec = theta_spec(hz, in_hw=(48, 64), out_hw=(48, 64))
    lab = Labels(boxes=[[20.0, 10.0, 40.0, 20.0], [5.0, 5.0, 10.0, 10.0], [35.0, 5.0, 45.0, 10.0]],
                 box_labels=[7, 8, 9])
    out, info = transform_labels(lab, spec, (48, 64))
    np.testing.assert_allclose(out.boxes, [[60.0, 30.0, 63.5, 47.5], [6.0, 6.0, 15.0, 15.0]], atol=1e-9)
    assert out.box_labels == (7, 8) and info.boxes_kept == (0, 1) and info.boxes_dropped == 1
    # box 0's warped area has no bound: its visibility is the share of its own area shown (see below)
    assert info.box_visibility[0] == pytest.approx(_shown_share(lab.boxes[0], spec, (48, 64)), abs=2e-3)
    assert 0.001 < info.box_visibility[0] < 0.02 and info.box_visibility[1] == 1.0
    out, info = transform_labels(lab, spec, (48, 64), min_visibility=0.05)
    assert out.box_labels == (8,) and info.boxes_dropped == 2


def _shown_share(box, spec, in_hw, n=600):
    """The share of a box's area whose points land in the output (keypoints on an n x n grid of cell centres)."""
    t = (np.arange(n) + 0.5) / n
    xs, ys = np.meshgrid(box[0] + (box[2] - box[0]) * t, box[1] + (box[3] - box[1]) * t)
    _, info = transform_labels(Labels(keypoints=np.c_[xs.ravel(), ys.ravel()]), spec, in_hw)
    return info.keypoints_visible / n ** 2


@pytest.mark.parametrize("box", [[40.0, 5.0, 60.0, 50.0], [-0.5, -0.5, 99.5, 59.5], [10.0, 20.0, 90.0, 59.0]])
def test_a_box_across_the_horizon_is_as_visible_as_the_share_of_it_shown(box):
    # y' = y / (1 + 1.5 y_n): the rows above the output's horizon run off to infinity; a box across it that fills
    # much of the output was given a visibility of about 1e-17 (its warped area has no bound) and dropped
    spec = WarpSpec(theta=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.5, 1.0)))
    out, info = transform_labels(Labels(boxes=[box]), spec, (60, 100), min_visibility=0.2)
    want = _shown_share(np.array(box), spec, (60, 100))
    assert want > 0.3 and info.boxes_kept == (0,)
    assert info.box_visibility[0] == pytest.approx(want, abs=3e-3)


def test_visibility_threshold_drops_a_box_pushed_mostly_outside():
    h, w = 40, 50
    spec = theta_spec(T.translate(30.0, 0.0), in_hw=(h, w), out_hw=(h, w))
    lab = Labels(boxes=[[9.5, 4.5, 29.5, 14.5], [0.0, 20.0, 10.0, 30.0]], box_labels=["far", "near"])
    out, info = transform_labels(lab, spec, (h, w))  # box 0 becomes [39.5, 4.5, 59.5, 14.5]: 10 of 20 px inside
    np.testing.assert_allclose(out.boxes, [[39.5, 4.5, 49.5, 14.5], [30.0, 20.0, 40.0, 30.0]])
    assert info.box_visibility == pytest.approx((0.5, 1.0))
    out, info = transform_labels(lab, spec, (h, w), min_visibility=0.6)
    assert out.box_labels == ("near",) and info.boxes_kept == (1,) and info.boxes_dropped == 1
    gone = theta_spec(T.translate(100.0, 0.0), in_hw=(h, w), out_hw=(h, w))
    out, info = transform_labels(lab, gone, (h, w))  # nothing left inside: dropped even at threshold 0
    assert len(out.boxes) == 0 and out.box_labels == () and info.boxes_dropped == 2


def test_keypoints_are_all_kept_with_a_visible_flag():
    h, w = 40, 50
    spec = theta_spec(T.translate(30.0, 0.0), in_hw=(h, w), out_hw=(h, w))
    lab = Labels(keypoints=[[5, 5], [19.5, 5], [19.6, 5], [-20, 5]], keypoint_labels=[1, 2, 3, 4])
    out, info = transform_labels(lab, spec, (h, w))
    np.testing.assert_allclose(out.keypoints, [[35, 5], [49.5, 5], [49.6, 5], [10, 5]])
    assert out.visible.tolist() == [True, True, False, True] and out.keypoint_labels == (1, 2, 3, 4)
    assert info.keypoints_visible == 3 and info.keypoints_lost == 0


@pytest.mark.parametrize("family", ["tps", "elastic"])
def test_curved_maps_box_extent_covers_the_warped_outline(family):
    spec = tps_spec(jitter=4.0)[0] if family == "tps" else elastic_spec(150.0, 8.0, seed=5)
    box = np.array([14.0, 9.0, 41.0, 30.0])
    out, info = transform_labels(Labels(boxes=[box]), spec, IN_HW)
    # oracle: a dense outline (8x the one used), mapped point by point
    t = np.linspace(0, 1, 257)
    ring = np.concatenate([np.c_[box[0] + (box[2] - box[0]) * t, np.full_like(t, box[1])],
                           np.c_[np.full_like(t, box[2]), box[1] + (box[3] - box[1]) * t],
                           np.c_[box[0] + (box[2] - box[0]) * t, np.full_like(t, box[3])],
                           np.c_[np.full_like(t, box[0]), box[1] + (box[3] - box[1]) * t]])
    q = out_from_in(spec, ring, IN_HW)
    want = np.clip(np.r_[q.min(0), q.max(0)], -0.5, [OUT_HW[1] - 0.5, OUT_HW[0] - 0.5] * 2)
    np.testing.assert_allclose(out.boxes[0], want, atol=0.05)


def test_unknown_keypoints_stay_unknown_and_degenerate_boxes():
    spec = theta_spec(T.translate(2.0, 1.0), in_hw=(20, 30), out_hw=(20, 30))
    lab = Labels(keypoints=[[np.nan, np.nan], [1, 1]], boxes=[[3, 4, 3, 9], [5, 5, 5, 5], [40, 4, 40, 9]])
    out, info = transform_labels(lab, spec, (20, 30))
    assert np.isnan(out.keypoints[0]).all()
    np.testing.assert_allclose(out.keypoints[1], [3, 2], atol=1e-12)
    assert out.visible.tolist() == [False, True] and info.keypoints_lost == 1
    # zero-area boxes are kept while they touch the output (visibility 1), dropped when they do not
    np.testing.assert_allclose(out.boxes, [[5, 5, 5, 10], [7, 6, 7, 6]], atol=1e-12)
    assert info.box_visibility == pytest.approx((1.0, 1.0)) and info.boxes_dropped == 1


def test_a_line_box_half_outside_is_as_visible_as_a_nearly_flat_one():
    # a line's visibility was 1 wherever it touched the output; a box 1e-6 px tall beside it got its share
    spec = theta_spec(np.eye(3), in_hw=(60, 100), out_hw=(60, 100))
    lab = Labels(boxes=[[90, 10, 110, 10], [90, 10, 110, 10.000001], [-20, 10, 10, 10], [20, 5, 20, 65]])
    out, info = transform_labels(lab, spec, (60, 100))
    assert info.box_visibility == pytest.approx((9.5 / 20, 9.5 / 20, 10.5 / 30, 54.5 / 60), abs=1e-6)
    out, info = transform_labels(lab, spec, (60, 100), min_visibility=0.6)
    assert info.boxes_kept == (3,)
    np.testing.assert_allclose(out.boxes, [[20, 5, 20, 59.5]])


def test_a_box_wholly_behind_the_horizon_is_dropped():
    hz = np.array([[1.0, 0, 0], [0, 1.0, 0], [-1 / 30, 0, 1.0]])
    spec = theta_spec(hz, in_hw=(48, 64), out_hw=(48, 64))
    out, info = transform_labels(Labels(boxes=[[35, 5, 45, 10]], box_labels=["x"]), spec, (48, 64))
    assert len(out.boxes) == 0 and out.box_labels == () and info.boxes_dropped == 1


def test_labels_round_trip_through_json_records():
    lab = Labels(keypoints=[[0.5, 1.5]], keypoint_labels=[7], boxes=[[0, 0, 2, 2]], box_labels=["a"])
    doc = json.loads(json.dumps(lab.to_record()))
    assert "size" not in doc and "visible" not in doc["keypoints"][0]
    assert Labels.from_record(doc) == lab


def test_transform_labels_rejects_bad_arguments():
    spec = theta_spec(affine_map())
    with pytest.raises(InvalidArgumentError, match="min_visibility"):
        transform_labels(Labels(), spec, IN_HW, min_visibility=1.5)
    with pytest.raises(InvalidArgumentError, match="Labels"):
        transform_labels({"boxes": []}, spec, IN_HW)
    with pytest.raises(InvalidArgumentError, match="no theta or tps"):
        out_from_in(WarpSpec(), [[0, 0]], IN_HW)
    out, info = transform_labels(Labels(), spec, IN_HW)
    assert out == Labels(visible=np.zeros(0, bool)) and info.boxes_dropped == 0
    with pytest.raises(InvalidArgumentError, match="input size is needed"):
        out_from_in(spec, [[0, 0]])
    sized = spec.replace(in_hw=IN_HW)
    assert out_from_in(sized, [[3.0, 4.0]]).tolist() == out_from_in(spec, [[3.0, 4.0]], IN_HW).tolist()
    with pytest.raises(InvalidArgumentError, match="record is for a 60x44 input but the input is 61x44"):
        transform_labels(Labels(), sized, (44, 61))


def test_labels_record_validation():
    with pytest.raises(InvalidArgumentError, match=r"boxes\[1\].*min <= max"):
        Labels(boxes=[[0, 0, 1, 1], [2, 0, 1, 1]])
    with pytest.raises(InvalidArgumentError, match=r"shape \(n, 2\)"):
        Labels(keypoints=[[0, 0, 1]])
    with pytest.raises(InvalidArgumentError, match="3 entries for 2"):
        Labels(keypoints=[[0, 0], [1, 1]], keypoint_labels=["a", "b", "c"])
    with pytest.raises(InvalidArgumentError, match="string or an integer"):
        Labels(boxes=[[0, 0, 1, 1]], box_labels=[1.5])
    with pytest.raises(InvalidArgumentError, match="finite"):
        Labels(keypoints=[[np.inf, 0]])
    a = Labels(keypoints=[[np.nan, np.nan]], boxes=[[0, 0, 1, 1]])
    assert a == Labels(keypoints=[[np.nan, np.nan]], boxes=[[0, 0, 1, 1]]) and a != Labels()
    with pytest.raises(ValueError):
        a.keypoints[0, 0] = 1.0  # read-only


# --------------------------------------------------------------------------- JSON sidecars

def test_json_round_trip(tmp_path):
    lab = Labels(keypoints=[[1.25, 2.5], [np.nan, np.nan], [100.0, 3.0]], keypoint_labels=["nose", None, 3],
                 boxes=[[-0.5, -0.5, 9.5, 4.5], [2.0, 1.0, 3.0, 4.0]], box_labels=["cat", None])
    path = tmp_path / "photo.json"
    write_labels_json(path, lab, (5, 10))
    doc = json.loads(path.read_text())
    assert doc["size"] == [10, 5] and doc["coords"] == "pixel" and doc["schema"] == 1
    assert doc["keypoints"][1] == {"x": None, "y": None, "visible": False}
    assert [k["visible"] for k in doc["keypoints"]] == [True, False, False]
    assert doc["boxes"][0] == {"box": [-0.5, -0.5, 9.5, 4.5], "label": "cat"}
    back = read_labels_json(path, (5, 10))
    assert back == Labels(keypoints=lab.keypoints, keypoint_labels=lab.keypoint_labels, boxes=lab.boxes,
                          box_labels=lab.box_labels, visible=[True, False, False])
    with pytest.raises(ImageWriteError):
        write_labels_json(path, lab, (5, 10))  # exists
    write_labels_json(path, lab, (5, 10), overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photo.json"]  # no temporary files left


def test_json_short_forms(tmp_path):
    path = tmp_path / "a.json"
    path.write_text('{"keypoints": [[1, 2], {"x": 3, "y": 4, "label": "eye"}], "boxes": [[0, 1, 2, 3]]}')
    lab = read_labels_json(path)
    assert lab.keypoints.tolist() == [[1, 2], [3, 4]] and lab.keypoint_labels == (None, "eye")
    assert lab.boxes.tolist() == [[0, 1, 2, 3]] and lab.box_labels is None and lab.visible is None
    path.write_text("{}")
    assert read_labels_json(path) == Labels()


@pytest.mark.parametrize("text, msg", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    ('{"keypoints": [[1, NaN]]}', "NaN is not allowed"),
    ('{"keypoints": [[1, Infinity]]}', "Infinity is not allowed"),
    ('{"keypoints": [[1, 2, 3]]}', r"keypoints\[0\] must be \[x, y\], got 3 values"),
    ('{"keypoints": [[1, "2"]]}', r"keypoints\[0\]\[1\] is not a number"),
    ('{"keypoints": [{"x": 1}]}', r'keypoints\[0\] needs "x" and "y"'),
    ('{"keypoints": [{"x": 1, "y": 2, "z": 3}]}', "unknown key 'z'"),
    ('{"keypoints": [{"x": 1, "y": 2, "visible": 1}]}', "visible must be true or false"),
    ('{"keypoints": [{"x": 1, "y": 2, "label": 1.5}]}', "string or an integer"),
    ('{"keypoints": {"x": 1}}', '"keypoints" must be a list'),
    ('{"boxes": [[0, 1, 2]]}', r"boxes\[0\] must be \[x_min, y_min, x_max, y_max\], got 3 values"),
    ('{"boxes": [[2, 1, 0, 3]]}', r"boxes\[0\] has x_max < x_min"),
    ('{"boxes": [{"label": "a"}]}', r'boxes\[0\] needs "box"'),
    ('{"boxes": [{"box": [0, 0, 1, true]}]}', r"boxes\[0\]\.box\[3\] is not a number"),
    ('{"boxes": [[0, 0, 1, 1e999]]}', "not finite"),
    ('{"boxes": [[0, 0, 1, 1' + '0' * 400 + ']]}', "not finite"),
    ('{"keypoints": [[1, 2]], "boxes": null}', '"boxes" must be a list, got null'),
    ('{"box": []}', "unknown key 'box'"),
    ('{"coords": "normalized"}', '"coords" must be "pixel"'),
    ('{"schema": 9}', "newer"),
    ('{"size": [10, 0]}', '"size" must be'),
    ('{"size": [11, 5]}', "labels are for a 11x5 image but the image is 10x5"),
])
def test_bad_json_sidecars_say_why(tmp_path, text, msg):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=msg) as e:
        read_labels_json(path, (5, 10))
    assert str(e.value).startswith(str(path) + ": ") and "\n" not in str(e.value)


def test_the_list_and_object_forms_mix_and_a_keypoint_without_the_flag_is_visible(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text('{"keypoints": [[1, 2], {"x": 3, "y": 4, "visible": false}, {"x": 5, "y": 1}]}')
    got = read_labels_json(path, (5, 10))
    np.testing.assert_array_equal(got.keypoints, [[1, 2], [3, 4], [5, 1]])
    assert list(got.visible) == [True, False, True]


def test_unreadable_label_files(tmp_path):
    with pytest.raises(InvalidArgumentError, match="cannot read .*missing.json"):
        read_labels_json(tmp_path / "missing.json")
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        read_yolo(tmp_path, (5, 10))
    (tmp_path / "bin.json").write_bytes(b'{"boxes": [\xff]}')
    with pytest.raises(InvalidArgumentError, match="not UTF-8"):
        read_labels_json(tmp_path / "bin.json")


# --------------------------------------------------------------------------- YOLO

def test_yolo_reads_in_pixel_extents():
    lab = labels_from_yolo_text("0 0.5 0.5 1 1\n\n3 0.25 0.1 0.1 0.2\n", (50, 40))
    np.testing.assert_allclose(lab.boxes, [[-0.5, -0.5, 39.5, 49.5], [7.5, -0.5, 11.5, 9.5]], atol=1e-12)
    assert lab.box_labels == (0, 3)
    assert labels_from_yolo_text("", (5, 5)) == Labels()


def test_yolo_round_trip(tmp_path):
    rng = np.random.default_rng(2)
    hw = (37, 53)
    lo = rng.uniform([-0.5, -0.5], [30, 20], (20, 2))
    boxes = np.c_[lo, lo + rng.uniform(0.5, 20, (20, 2))]
    boxes = np.minimum(boxes, [52.5, 36.5, 52.5, 36.5])
    lab = Labels(boxes=boxes, box_labels=list(rng.integers(0, 80, 20)))
    path = tmp_path / "img.txt"
    write_yolo(path, lab, hw)
    back = read_yolo(path, hw)
    np.testing.assert_allclose(back.boxes, lab.boxes, atol=1e-6 * 53)
    assert back.box_labels == lab.box_labels
    assert len(path.read_text().splitlines()) == 20
    # boxes outside the image are clipped on writing
    text = yolo_text(Labels(boxes=[[-10, -10, 60, 40]], box_labels=[1]), hw)
    assert text == "1 0.500000 0.500000 1.000000 1.000000\n"


@pytest.mark.parametrize("text, msg", [
    ("0 0.5 0.5 0.2", "line 1: expected 5 values"),
    ("0 0.5 0.5 0.2 0.2 0.1", "expected 5 values"),
    ("0 0.1 0.1 0.9 0.1 0.5 0.8", r"got 7 \(a YOLO segmentation, oriented-box or pose line\? only boxes are read"),
    ("\n1 0.5 1.2 0.2 0.2", "line 2: cy = 1.2 is outside"),
    ("0 nan 0.5 0.2 0.2", "cx = nan is outside"),
    ("0 0.5 0.5 -0.1 0.2", "w = -0.1 is outside"),
    ("-1 0.5 0.5 0.2 0.2", "class -1 is negative"),
    ("1.5 0.5 0.5 0.2 0.2", "class '1.5' is not a whole number"),
    ("dog 0.5 0.5 0.2 0.2", "class 'dog'"),
    ("0 0.5 half 0.2 0.2", "cy 'half' is not a number"),
])
def test_bad_yolo_files_say_why(tmp_path, text, msg):
    path = tmp_path / "bad.txt"
    path.write_text(text)
    with pytest.raises(InvalidArgumentError, match=msg) as e:
        read_yolo(path, (10, 10))
    assert str(e.value).startswith(str(path) + ": ") and "\n" not in str(e.value)


def test_yolo_writer_needs_integer_classes():
    with pytest.raises(InvalidArgumentError, match="class for every box"):
        yolo_text(Labels(boxes=[[0, 0, 1, 1]]), (5, 5))
    with pytest.raises(InvalidArgumentError, match="integers >= 0"):
        yolo_text(Labels(boxes=[[0, 0, 1, 1]], box_labels=["cat"]), (5, 5))


def test_module_examples_and_numpy_free_import():
    import doctest
    import subprocess
    import sys

    import stntool.labels

    assert doctest.testmod(stntool.labels).failed == 0
    code = "import sys, stntool.labels; sys.exit('numpy' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# --------------------------------------------------------------------------- masks

def test_check_mask():
    check_mask(np.zeros((48, 64), np.uint8), (48, 64))
    with pytest.raises(InvalidArgumentError, match="^mask is 64x48 but the image is 640x480$"):
        check_mask(np.zeros((48, 64), np.uint8), (480, 640))
    with pytest.raises(InvalidArgumentError, match="uint8, uint16 or bool"):
        check_mask(np.zeros((4, 4), np.float32), (4, 4))
    with pytest.raises(InvalidArgumentError, match=r"\(H, W\)"):
        check_mask(np.zeros(4, np.uint8), (4, 4))
    with pytest.raises(InvalidArgumentError, match="mask is 6x4 but the image is 5x4"):
        warp_mask(np.zeros((4, 6), np.uint8), WarpSpec(theta=((1, 0, 0), (0, 1, 0)), in_hw=(4, 5)))


def nearest_oracle(mask, spec, in_hw):
    """Each output pixel takes the mask value at the rounded input point it reads, 0 outside."""
    h, w = spec.out_hw
    ys, xs = np.mgrid[0:h, 0:w]
    p = in_from_out(spec, np.stack([xs, ys], -1).astype(float), in_hw)
    ix, iy = np.rint(p[..., 0]).astype(int), np.rint(p[..., 1]).astype(int)
    inside = (ix >= 0) & (iy >= 0) & (ix < in_hw[1]) & (iy < in_hw[0])
    out = np.zeros((h, w) + mask.shape[2:], mask.dtype)
    out[inside] = mask[iy[inside], ix[inside]]
    return out


@pytest.mark.parametrize("dtype, channels", [(np.uint8, None), (np.uint16, 2), (np.uint8, 3), (bool, None)])
def test_warp_mask_is_nearest_with_fill_zero(dtype, channels):
    rng = np.random.default_rng(4)
    shape = IN_HW if channels is None else IN_HW + (channels,)
    mask = (rng.integers(1, 2 if dtype is bool else 60000 if dtype is np.uint16 else 250, shape)).astype(dtype)
    spec = theta_spec(affine_map(), mode="bicubic", padding="border")  # mask warping overrides both
    for backend in ("numpy", "cpu"):
        out = warp_mask(mask, spec, backend=backend, image_hw=IN_HW)
        assert out.dtype == mask.dtype and out.shape == OUT_HW + shape[2:]
        np.testing.assert_array_equal(out, nearest_oracle(mask, spec, IN_HW))
    assert (out == 0).any() and (out != 0).any()


def test_warp_mask_of_a_spline_matches_the_nearest_warp():
    rng = np.random.default_rng(6)
    mask = rng.integers(1, 9, IN_HW + (4,)).astype(np.uint8)  # four channels: not an alpha image
    spec = tps_spec(jitter=4.0)[0]
    out = warp_mask(mask, spec, backend="numpy")
    for k in range(4):
        ref = apply_spec(mask[..., k], spec.replace(mode="nearest", padding="constant", fill=(0.0,)),
                         backend="numpy")
        np.testing.assert_array_equal(out[..., k], ref)


def test_warp_mask_elastic_uses_only_mask_values():
    rng = np.random.default_rng(5)
    mask = rng.integers(1, 6, IN_HW).astype(np.uint8)
    spec = elastic_spec(150.0, 8.0, seed=5)
    out = warp_mask(mask, spec, backend="numpy")
    assert out.shape == OUT_HW and set(np.unique(out)) <= set(range(6))
    assert (out == 0).any()
    ref = apply_spec(mask, spec.replace(mode="nearest", padding="constant", fill=(0.0,)), backend="numpy")
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("out_hw", [(44, 60), (200, 300), (31, 77)])
def test_border_labels_stay_on_the_border_of_a_resize(out_hw, align_corners):
    # the output's corners are the input's: a resize (or the identity) maps them a few ulps outside the extent,
    # which must not hide a keypoint on the border nor cut a box covering the whole image below visibility 1
    h, w = IN_HW
    ho, wo = out_hw
    spec = WarpSpec(theta=((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)), out_hw=out_hw, align_corners=align_corners)
    lab = Labels(keypoints=[[-0.5, -0.5], [w - 0.5, h - 0.5], [w - 0.5, -0.5]],
                 boxes=[[-0.5, -0.5, w - 0.5, h - 0.5], [-0.5, -0.5, 10.0, 10.0]])
    # align_corners=True maps pixel centres onto pixel centres: the border lies half a pixel further in or out
    inner = align_corners and (ho, wo) != (h, w)
    out, info = transform_labels(lab, spec, IN_HW, min_visibility=0.0 if inner else 1.0)
    if not inner:
        assert out.visible.tolist() == [True, True, True]
        np.testing.assert_array_equal(out.keypoints, [[-0.5, -0.5], [wo - 0.5, ho - 0.5], [wo - 0.5, -0.5]])
        assert info.boxes_kept == (0, 1) and info.box_visibility == (1.0, 1.0)
        np.testing.assert_array_equal(out.boxes[0], [-0.5, -0.5, wo - 0.5, ho - 0.5])
    else:
        assert info.boxes_kept == (0, 1)


def test_a_keypoint_marked_invisible_stays_invisible():
    h, w = 40, 50
    spec = theta_spec(T.translate(3.0, 0.0), in_hw=(h, w), out_hw=(h, w))
    lab = Labels(keypoints=[[5, 5], [6, 6], [48, 5]], visible=[False, True, True])
    out, info = transform_labels(lab, spec, (h, w))
    np.testing.assert_allclose(out.keypoints, [[8, 5], [9, 6], [51, 5]])
    assert out.visible.tolist() == [False, True, False] and info.keypoints_visible == 1
    assert transform_labels(Labels(keypoints=[[5, 5]]), spec, (h, w))[0].visible.tolist() == [True]


def test_coordinates_beyond_float64_after_the_warp_have_no_place_instead_of_an_error():
    h, w = 30, 40
    big = theta_spec(T.compose(T.scale(1.5, 1.5), T.rotate(30)), in_hw=(h, w), out_hw=(h, w))
    out, info = transform_labels(Labels(keypoints=[[1e308, 1e308], [3, 3]]), big, (h, w))
    assert np.isnan(out.keypoints[0]).all() and np.isfinite(out.keypoints[1]).all()
    assert out.visible.tolist()[0] is False and info.keypoints_lost == 1
    wide = Labels(boxes=[[-1e308, 0.0, 1e308, 5.0], [28.0, 20.0, 32.0, 24.0]])
    out, info = transform_labels(wide, elastic_spec(), IN_HW)  # a box whose width overflows: no traceback
    assert 1 in info.boxes_kept
    tall = Labels(boxes=[[0.0, 0.0, 5.0, 1e12], [28.0, 20.0, 32.0, 24.0]])
    out, info = transform_labels(tall, theta_spec(projective_map()), IN_HW)
    assert 1 in info.boxes_kept and np.isfinite(out.boxes).all()


def test_strong_elastic_fields_find_the_point_inside_whatever_else_is_asked():
    # the restart grid's size came from the widest window of all the points asked together, and a point's
    # first four grid cells in raster order were its only restarts: a point could be solved alone and lost
    # among others, and a point read by an inside pixel came back outside (invisible) through the map's
    # extension beyond the output's edge
    from stntool.augment import Augmenter

    spec = Augmenter(elastic=(120, 6), rotate=(-10, 10)).sample(np.random.default_rng(4), (120, 80))
    p, q = [3.09474993, 48.36250502], [43.27048487, 94.09495351]  # read by output pixels (0, 42) and (41, 98)
    both = out_from_in(spec, [p, q], (120, 80))
    assert np.array_equal(both, np.vstack([out_from_in(spec, [p], (120, 80)), out_from_in(spec, [q], (120, 80))]))
    assert np.all(np.isfinite(both)) and np.all(np.abs(in_from_out(spec, both, (120, 80)) - [p, q]) < 1e-3)
    assert np.all((both >= -0.5) & (both <= [79.5, 119.5])), both
    rng = np.random.default_rng(0)
    for seed in range(3):
        spec = Augmenter(elastic=(120, 6)).sample(np.random.default_rng(seed), (120, 80))
        pix = rng.uniform([0, 0], [79, 119], (60, 2))
        pts = in_from_out(spec, pix, (120, 80))
        got = out_from_in(spec, pts, (120, 80))
        alone = np.vstack([out_from_in(spec, [x], (120, 80)) for x in pts])
        assert np.array_equal(got, alone, equal_nan=True)
        assert np.all(np.isfinite(got)) and np.all((got >= -0.5) & (got <= [79.5, 119.5]))  # seen: inside
        assert np.all(np.abs(in_from_out(spec, got, (120, 80)) - pts) < 1e-3)


def test_keypoints_and_boxes_of_booleans_complex_numbers_or_strings_are_refused():
    # numpy read [[True, False]] as the point (1, 0), and 1+2j as 1 with only a warning
    for bad in ([[True, False]], [[1 + 2j, 3]], [["1", "2"]]):
        with pytest.raises(InvalidArgumentError, match="keypoints must be numbers"):
            Labels(keypoints=bad)
    with pytest.raises(InvalidArgumentError, match="boxes must be numbers"):
        Labels(boxes=[[True, False, True, True]])
    kept = Labels(keypoints=[[1, 2], [None, None]], boxes=np.array([[0, 0, 2, 3]], np.int32))
    assert np.isnan(kept.keypoints[1]).all() and kept.boxes.dtype == np.float64


def test_in_from_out_takes_the_records_input_size_as_out_from_in_does():
    # the docs' round trip in_from_out(spec, out_from_in(spec, p)) raised TypeError (in_hw had no default)
    from stntool.augment import Augmenter

    spec = Augmenter(elastic=(30, 5)).sample(np.random.default_rng(0), (40, 60)).replace(in_hw=(40, 60))
    p = np.array([[10.0, 12.0], [30.0, 20.0]])
    assert np.abs(in_from_out(spec, out_from_in(spec, p)) - p).max() < 1e-3
    with pytest.raises(InvalidArgumentError, match="for a 60x40 input but the input is 50x40"):
        in_from_out(spec, p, (40, 50))
    with pytest.raises(InvalidArgumentError, match="the input size is needed"):
        in_from_out(spec.replace(in_hw=None), p)


def test_a_box_across_the_edge_is_the_extent_of_its_part_inside():
    """A square turned 45° whose corner pokes into the image: the box is the extent of the triangle inside, and the
    visibility its share of the area (the hull of the whole diamond, clipped, was twice as tall and said 0.25)."""
    c = (50.0, 50.0)
    d = 10 * np.sqrt(2)  # the diamond's half-diagonal
    m = T.compose(T.rotate(45, center=c), T.translate(-50.5 - d / 2, 0))  # the centre at x = -0.5 - d / 2
    spec = theta_spec(m, (100, 100), (100, 100))
    out, info = transform_labels(Labels(boxes=[[40, 40, 60, 60]]), spec, (100, 100))
    np.testing.assert_allclose(out.boxes, [[-0.5, 50 - d / 2, -0.5 + d / 2, 50 + d / 2]], atol=1e-6)
    np.testing.assert_allclose(info.box_visibility, [0.125], atol=1e-9)  # a triangle of d²/4 of the diamond's d²·2
    _, info = transform_labels(Labels(boxes=[[40, 40, 60, 60]]), spec, (100, 100), min_visibility=0.2)
    assert info.boxes_kept == ()


@pytest.mark.parametrize("family", ["affine", "projective", "tps"])
def test_a_box_across_the_edge_fits_the_pixels_it_labels(family):
    """Render a filled box, warp it partly out of the image: the moved box holds its pixels in the output and
    reaches no more than a pixel beyond them on any side. (Bilinear sampling of the box's pixels is positive
    exactly inside the box's edges, so the output pixels above 0 are those whose centres the moved box covers.)"""
    in_hw = out_hw = (80, 120)
    img = np.zeros(in_hw, np.float64)
    box = [70.0, 10.0, 110.0, 40.0]  # edges of pixels 70.5..109.5 x 10.5..39.5
    img[11:40, 71:110] = 1.0
    cin = (59.5, 39.5)
    m = T.compose(T.rotate(35, center=cin), T.translate(28, -22))  # the box's top right corner leaves the image
    if family == "affine":
        spec = theta_spec(m, in_hw, out_hw)
    elif family == "projective":
        persp = np.array([[1, 0, 0], [0, 1, 0], [0.002, -0.001, 1.0]])
        spec = theta_spec(T.compose(m, T.translate(-59.5, -39.5), persp, T.translate(59.5, 39.5)), in_hw, out_hw)
    else:
        src = np.array([[5, 5], [115, 5], [5, 75], [115, 75], [60, 40], [90, 25]], float)
        dst = apply_h(m, src) + [[1, -1], [0, 2], [-1, 0], [2, 1], [0, 0], [1.5, -1]]
        spec = WarpSpec(tps=TpsPoints(src=tuple(map(tuple, src)), dst=tuple(map(tuple, dst))), out_hw=out_hw)
    warped = apply_spec(img, spec.replace(padding="zeros"), backend="numpy")
    ys, xs = np.nonzero(warped > 0)
    assert 0 < len(xs) and (ys.min() == 0 or xs.max() == out_hw[1] - 1)  # cut by the image's edge
    out, _ = transform_labels(Labels(boxes=[box]), spec, in_hw)
    x0, y0, x1, y1 = out.boxes[0]
    assert x0 <= xs.min() and y0 <= ys.min() and x1 >= xs.max() and y1 >= ys.max()  # holds its pixels
    # and no more: a pixel, or up to √2 at a corner's tip that passes between pixel centres (the outline of a
    # spline's box is drawn through 32 points a side, and found within 0.1 px)
    assert max(xs.min() - x0, ys.min() - y0, x1 - xs.max(), y1 - ys.max()) <= 1.5


def test_an_elastic_box_moves_as_it_would_alone():
    """The outline's points per side came from the call's largest box: a box's result depended on the others."""
    spec = elastic_spec(alpha=30.0, sigma=1.5)
    small, large = [10.0, 12.0, 22.0, 20.0], [-5.0, -5.0, 64.0, 48.0]  # the large one needs more points per side
    alone, info_alone = transform_labels(Labels(boxes=[small]), spec, IN_HW)
    both, info_both = transform_labels(Labels(boxes=[small, large]), spec, IN_HW)
    np.testing.assert_array_equal(both.boxes[0], alone.boxes[0])
    assert info_both.box_visibility[0] == info_alone.box_visibility[0]


def test_boxes_whose_area_says_nothing_use_their_extents_share():
    """A line turned across the edge: its polygon has no area (it was kept whole at visibility 1); a box too large
    for float64's products (its area overflowed to NaN and it was kept)."""
    spec = theta_spec(T.rotate(45, center=(9.5, 9.5)), (20, 20), (20, 20))
    line = [4.5, 4.5, 30.0, 4.5]
    out, info = transform_labels(Labels(boxes=[line]), spec, (20, 20))
    ends = apply_h(T.rotate(45, center=(9.5, 9.5)), np.array([[4.5, 4.5], [30.0, 4.5]]))
    lo, hi = ends.min(0), ends.max(0)
    inside = (min(hi[0], 19.5) - max(lo[0], -0.5)) * (min(hi[1], 19.5) - max(lo[1], -0.5))
    np.testing.assert_allclose(info.box_visibility, [inside / np.prod(hi - lo)], rtol=1e-9)
    x0, y0, x1, y1 = out.boxes[0]  # the part of the line inside: from its end in the image to the top edge
    np.testing.assert_allclose([x0, x1, y0], [lo[0], lo[0] + (ends[0, 1] + 0.5), -0.5], atol=1e-9)
    _, info = transform_labels(Labels(boxes=[[0, 0, 1e160, 1e160]]), theta_spec(np.eye(3), (10, 10), (10, 10)),
                               (10, 10))
    assert info.boxes_kept == ()  # 100 px of 1e320: nothing of it is in the image


def test_polygon_areas_do_not_depend_on_the_rows_they_are_padded_to():
    """A pairwise sum groups a row's terms by the row's length: the same polygon padded wider (beside a polygon of
    more vertices in one call) got other last bits."""
    from stntool.labels import _areas, _padded

    rng = np.random.default_rng(0)
    for _ in range(200):
        k = int(rng.integers(3, 200))
        angle = np.sort(rng.uniform(0, 2 * np.pi, k))
        poly = np.c_[np.cos(angle), np.sin(angle)] * rng.uniform(1, 1e4, (k, 1)) + rng.uniform(-1e4, 1e4, 2)
        alone = _areas(*_padded([poly]))[0]
        wide = _areas(*_padded([poly, np.zeros((int(rng.integers(k + 1, 1200)), 2))]))[0]
        assert wide == alone
