"""Make the README pictures with stntool itself: python docs/make_figures.py"""

from pathlib import Path

import cv2
import numpy as np

import stntool

HERE = Path(__file__).resolve().parent
THETA = [[0.9, -0.25, 0.05], [0.25, 0.9, 0.0]]


def gridded(img, step=32):
    out = img.copy()
    h, w = out.shape[:2]
    for x in range(0, w, step):
        cv2.line(out, (x, 0), (x, h - 1), (0, 0, 255), 1)
    for y in range(0, h, step):
        cv2.line(out, (0, y), (w - 1, y), (0, 0, 255), 1)
    cv2.circle(out, (w // 2, h // 2), 6, (0, 255, 0), -1)
    return out


def label(img, text):
    out = cv2.copyMakeBorder(img, 28, 0, 0, 0, cv2.BORDER_CONSTANT, value=(255, 255, 255))
    cv2.putText(out, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return out


def main():
    src = cv2.imdecode(np.fromfile(HERE.parent / "samples" / "photo.jpg", np.uint8), cv2.IMREAD_COLOR)
    src = cv2.resize(src, (320, 240), interpolation=cv2.INTER_AREA)
    before = gridded(src)
    after = stntool.warp(before, THETA, padding="zeros")
    reflect = stntool.warp(before, THETA, padding="reflection")
    row = np.hstack([label(before, "input with grid"),
                     label(after, "warp, theta=[[.9,-.25,.05],[.25,.9,0]]"),
                     label(reflect, "same theta, padding=reflection")])
    cv2.imwrite(str(HERE / "images" / "convention.png"), row)
    augment_sheet()
    rectify_sheet()


def augment_sheet():
    """The augment preview of the README, made by the command itself (its --preview sheet)."""
    import subprocess
    import sys
    import tempfile

    import json
    import shutil

    samples = HERE.parent / "samples"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in ("photo.jpg", "text_page.png", "chart.png"):
            shutil.copy(samples / name, tmp / name)
        # labels beside two of them (the sun: a box and its centre; the chart's bars: boxes), drawn on the sheet
        # as each variant moved them
        for name, doc in (("photo.jpg", _sun_labels(tmp / "photo.jpg")), ("chart.png", _bar_labels(tmp / "chart.png"))):
            (tmp / name).with_suffix(".json").write_text(json.dumps(doc))
        subprocess.run([sys.executable, "-m", "stntool", "augment", str(tmp / "photo.jpg"),
                        str(tmp / "text_page.png"), str(tmp / "chart.png"), "-o", str(tmp / "out"), "--count", "4",
                        "--seed", "7", "--preset", "heavy", "--tps", "0.03", "--padding", "reflection",
                        "--preview", str(HERE / "images" / "augment.png"), "--overwrite", "-q"], check=True)


def _components(img, mask, min_area=200):
    """Boxes (pixel extents) of the connected regions of ``mask`` larger than ``min_area``, with their centres."""
    n, _, stats, centres = cv2.connectedComponentsWithStats(mask.astype(np.uint8))
    return [([x - 0.5, y - 0.5, x + w - 0.5, y + h - 0.5], (float(cx), float(cy)))
            for (x, y, w, h, area), (cx, cy) in zip(stats[1:], centres[1:]) if area >= min_area]


def _sun_labels(path):
    """The photo's sun (its yellow disc): a box and a keypoint at its centre."""
    img = cv2.imread(str(path))
    b, g, r = (img[..., k].astype(int) for k in range(3))
    (box, (cx, cy)), *_ = sorted(_components(img, (r > 200) & (g > 170) & (b < 120)),
                                 key=lambda c: -(c[0][2] - c[0][0]) * (c[0][3] - c[0][1]))
    return {"boxes": [{"box": box, "label": "sun"}], "keypoints": [{"x": cx, "y": cy, "label": "sun centre"}]}


def _bar_labels(path):
    """The chart's bars: one box per column of coloured (or grey) pixels above the axis."""
    img = cv2.imread(str(path))
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    ink = ((hsv[..., 1] > 120) | ((hsv[..., 2] > 60) & (hsv[..., 2] < 160))) & (hsv[..., 2] > 60)
    cols = ink.sum(axis=0) > 10
    boxes, x = [], 0
    while x < cols.size:
        if cols[x]:
            x0 = x
            while x < cols.size and cols[x]:
                x += 1
            if x - x0 >= 10:
                ys = np.nonzero(ink[:, x0:x].any(axis=1))[0]
                boxes.append({"box": [x0 - 0.5, float(ys.min()) - 0.5, x - 0.5, float(ys.max()) + 0.5], "label": "bar"})
        x += 1
    return {"boxes": boxes}


def rectify_sheet():
    """Before and after `stntool rectify` for held-out pages (fonts the model never saw), made by the command."""
    import json
    import subprocess
    import sys
    import tempfile

    from stntool import transforms as tf
    from stntool.pages import render_page
    from stntool.preview import contact_sheet
    from stntool.records import WarpSpec

    cases = [((3, 1), 12.0, 0.0), ((3, 2), -22.0, 0.1), ((3, 3), 95.0, 0.0), ((3, 4), 178.0, -0.05)]
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for i, (seed, deg, shear) in enumerate(cases):
            page = render_page(seed, size=(700, 520), split="heldout", colour=True)
            h, w = page.shape[:2]
            c = ((w - 1) / 2, (h - 1) / 2)
            fwd = (tf.translate(*c) @ tf.rotate(deg) @ tf.shear(np.degrees(np.arctan(shear))) @
                   tf.translate(-c[0], -c[1]))
            fill = [float(v) for v in np.median(page[0], axis=0)]
            img = stntool.warp(page, tf.theta_from_pixel_map(fwd, (h, w)), padding="constant", fill=fill)
            cv2.imwrite(str(src / f"page{i}.png"), img)
        subprocess.run([sys.executable, "-m", "stntool", "rectify", str(src), "-o", str(Path(tmp) / "out"),
                        "--family", "affine", "--manifest", str(Path(tmp) / "m.jsonl"), "-q"], check=True)
        rows = []
        for line in open(Path(tmp) / "m.jsonl"):
            rec = json.loads(line)
            spec = WarpSpec.from_record(rec)
            before = cv2.imread(rec["input"], cv2.IMREAD_COLOR)
            after = cv2.imread(rec["output"], cv2.IMREAD_COLOR)
            caption = f"quarter turns {rec['quarter_turns']}, confidence {rec['confidence']:.2f}"
            rows.append((Path(rec["input"]).name, before, [(spec, after, caption)]))
        order = sorted(range(len(rows)), key=lambda i: rows[i][0])
        sheet = contact_sheet([rows[i] for i in order], tile=300, grid_lines=6)
        cv2.imwrite(str(HERE / "images" / "rectify.png"), sheet)


if __name__ == "__main__":
    main()
