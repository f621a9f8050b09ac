"""Synthesise the small sample images shipped in samples/ (numpy + cv2 only, deterministic).

Run: python samples/make_samples.py   (rewrites the files next to this script)
"""

import os

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


_WORDS = ("the of and to in is that for it as with was on be by this are from at or have an they which "
          "one you were all we when there can been has more if will would their what about out many then "
          "them these so some her make like him into time two look more write go see number way could "
          "people than first water been call who oil its now find long down day did get come made may part "
          "page light sample grey text lines straight quickly brown fox jumps over lazy dog").split()


def text_page():
    """A page of text: a title and paragraphs of lower-case words in OpenCV's Hershey duplex font
    (ascenders and descenders, as in any Latin text)."""
    img = np.full((480, 360), 248, np.uint8)
    cv2.putText(img, "stntool sample page", (24, 48), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 20, 2, cv2.LINE_AA)
    rng = np.random.default_rng(1)
    y, first = 92, True
    while y < 456:
        x = 24
        while True:
            word = _WORDS[int(rng.integers(len(_WORDS)))]
            word = word.capitalize() if first else word
            (w, _), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_DUPLEX, 0.45, 1)
            if x + w > 336:
                break
            cv2.putText(img, word, (x, y), cv2.FONT_HERSHEY_DUPLEX, 0.45, 40, 1, cv2.LINE_AA)
            x += w + 5
            first = False
        first = rng.random() < 0.12  # a paragraph break now and then
        y += 36 if first else 18
    return img


def photo():
    h, w = 360, 480
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = np.dstack([230 - yy * 0.3, 180 - yy * 0.2, 120 - yy * 0.1])
    img = np.clip(sky, 0, 255).astype(np.uint8)
    cv2.circle(img, (380, 80), 40, (80, 220, 255), -1, cv2.LINE_AA)
    hills = (250 + 30 * np.sin(xx[0] / 50.0)).astype(int)
    for x in range(w):
        img[hills[x]:, x] = (40, 120 + (x % 7) * 3, 60)
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 6, img.shape)
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0)


def chart():
    img = np.full((300, 400, 3), 255, np.uint8)
    cv2.line(img, (40, 260), (380, 260), (0, 0, 0), 2)
    cv2.line(img, (40, 260), (40, 20), (0, 0, 0), 2)
    vals = [120, 200, 90, 170, 230, 60]
    colors = [(200, 80, 30), (30, 160, 60), (40, 40, 200), (150, 50, 150), (20, 150, 200), (90, 90, 90)]
    for i, (v, c) in enumerate(zip(vals, colors)):
        x = 60 + i * 52
        cv2.rectangle(img, (x, 260 - v), (x + 36, 259), c, -1)
    for gy in range(60, 260, 50):
        cv2.line(img, (42, gy), (380, gy), (220, 220, 220), 1)
    return img


def icon():
    img = np.zeros((128, 128, 4), np.uint8)
    cv2.circle(img, (64, 64), 52, (40, 120, 240, 255), -1, cv2.LINE_AA)
    cv2.circle(img, (64, 64), 30, (255, 255, 255, 255), -1, cv2.LINE_AA)
    cv2.rectangle(img, (58, 20), (70, 108), (20, 60, 160, 255), -1)
    return img


def gray16():
    yy, xx = np.mgrid[0:256, 0:256].astype(np.float64)
    v = 0.5 + 0.5 * np.sin(xx / 17.0) * np.cos(yy / 23.0)
    return np.round(v * 65535).astype(np.uint16)


def main():
    files = {
        "text_page.png": (text_page(), [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        "photo.jpg": (photo(), [cv2.IMWRITE_JPEG_QUALITY, 88]),
        "chart.png": (chart(), [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        "icon_rgba.png": (icon(), [cv2.IMWRITE_PNG_COMPRESSION, 9]),
        "gray16.png": (gray16(), [cv2.IMWRITE_PNG_COMPRESSION, 9]),
    }
    for name, (img, params) in files.items():
        ok, buf = cv2.imencode(os.path.splitext(name)[1], img, params)
        assert ok, name
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(buf.tobytes())
        print(f"{name}: {img.shape} {img.dtype}, {len(buf)} bytes")


if __name__ == "__main__":
    main()
