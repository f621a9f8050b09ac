"""Synthetic upright text pages from the fonts on the machine, for training and evaluating page rectifiers.

A page is drawn with Pillow at its final resolution: text lines are exactly horizontal and the
page is axis-aligned (a trainer distorts it afterwards). :func:`render_page` returns the image,
:func:`make_page` the image with what was drawn (:class:`Page`), :func:`synthetic_pages` a
reproducible stream.

>>> from stntool.pages import render_page                  # doctest: +SKIP
>>> img = render_page(7)                                    # doctest: +SKIP
>>> img.dtype, img.ndim                                     # doctest: +SKIP
(dtype('uint8'), 2)

Pillow is an optional dependency (``pip install 'stntool[train]'``); it is imported on first use.

Layouts (``LAYOUT_KINDS``)
--------------------------
``article`` (title, one or two columns, headings, lists, figures, tables, equations), ``report``
(numbered sections, tables, figures), ``book`` (justified, indented paragraphs, running header),
``letter`` (letterhead, address block, signature), ``form`` (labelled underlines, comb boxes,
checkboxes, shaded section bars), ``table`` (one large ruled or striped table), ``receipt`` (narrow,
monospaced, dashed rules, barcode) and ``slide`` (landscape, big bullets, often light-on-dark).
``newspaper`` (masthead, 3-5 ruled columns) and ``invoice`` (addresses, line-item table, totals)
are drawn only for ``split="heldout"`` (:data:`HELDOUT_LAYOUTS`), so an evaluation can also use
layouts training never saw. Every page may carry a running header, a footer with a page number,
a footnote, and highlighter marks on some lines. About 10 % of pages are light-on-dark (40 %
of slides).

Degradations (each drawn at random, recorded in :attr:`Page.degradations`)
--------------------------------------------------------------------------
In this order: ink bleed (ink spread by a 2x2/3x3 min filter, blended), show-through (the
mirrored page, blurred and faint), paper texture (low-frequency multiplicative mottling plus
fibres), a coffee ring, a scanner edge, punch holes, page-in-photo (the page, upright and
axis-aligned, with a soft shadow on a larger desk-like background: plain, mottled, fabric, wood
grain at a random angle, or cluttered with rotated shapes; :attr:`Page.page_box` says where),
uneven lighting (a linear gradient, a vignette and a colour cast), blur (Gaussian, or a
down-and-up resample), contrast and gamma, Gaussian noise, JPEG artefacts. Apart from punch
holes (left edge, as on real filed sheets) no degradation has a preferred direction (no motion
blur; grain and clutter at any angle), so the page itself tells which way is up.

Fonts
-----
:func:`find_fonts` scans ``/usr/share/fonts``, ``/usr/local/share/fonts``, ``~/.fonts``,
``~/.local/share/fonts`` and the folders listed in ``STNTOOL_FONT_DIRS`` (``os.pathsep``-separated)
for ``.ttf``, ``.otf``, ``.ttc`` and ``.pfb`` files, skipping symbol, dingbat, math and emoji fonts.
:func:`font_split` keeps :data:`HELDOUT_FAMILIES` out of training. With no fonts, pages use
Pillow's built-in scalable font.

Reproducibility
---------------
Page ``seed`` (an int, or a tuple of ints ``(s0, s1, ...)``) seeds a ``numpy.random.SeedSequence``
(entropy ``(k, s0, s1, ...)`` with ``k`` the number of ints, so ``s`` and ``(s, 0)`` differ) that spawns
independent streams for the layout, the textures and the degradations, so the layout does not
depend on ``colour`` or ``degrade``. ``synthetic_pages(n, seed)`` yields ``render_page((seed, i))``.
The same seed gives the same bytes on one machine (same fonts, Pillow, OpenCV and libjpeg).
"""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from .errors import BackendUnavailableError, InvalidArgumentError

__all__ = [
    "FontFace", "Page", "find_fonts", "font_families", "font_split", "make_page", "render_page",
    "synthetic_pages", "HELDOUT_FAMILIES", "HELDOUT_LAYOUTS", "LAYOUT_KINDS", "FONT_DIRS",
]

#: Folders scanned for fonts (``~`` expanded), before ``STNTOOL_FONT_DIRS`` and ``extra_dirs``.
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")
FONT_EXTENSIONS = (".ttf", ".otf", ".ttc", ".pfb")  # preference order among copies of one face
#: Families (case-insensitive) kept for evaluation: designs training never sees.
HELDOUT_FAMILIES = frozenset({"c059", "p052", "urw bookman", "urw gothic", "liberation serif",
                              "dejavu serif condensed"})
LAYOUT_KINDS = ("article", "report", "book", "letter", "form", "table", "receipt", "slide",
                "newspaper", "invoice")
#: Layouts drawn only for ``split="heldout"``.
HELDOUT_LAYOUTS = ("newspaper", "invoice")
_TRAIN_KIND_WEIGHTS = {"article": 0.22, "report": 0.14, "book": 0.12, "letter": 0.12, "form": 0.12,
                       "table": 0.10, "receipt": 0.08, "slide": 0.10}
_EXCLUDED = re.compile(r"symbol|dingbat|wingding|webding|\bmath|emoji|\bicons?\b|awesome|ornament|braille|"
                       r"music|d050000l|cursor|\bglyph|\bpi\b", re.I)
_SCRIPT = re.compile(r"z003|script|chancery|brush|hand", re.I)
_WIDTH_WORDS = ("Ultra Condensed", "Extra Condensed", "Semi Condensed", "Condensed", "Narrow",
                "Semi Expanded", "Expanded", "Extended")
SCHEMA_VERSION = 1


# ---------------------------------------------------------------------------------------------- Pillow

def _pil():
    """(Image, ImageDraw, ImageFont), or a clear error when Pillow is missing."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError as exc:
        raise BackendUnavailableError(
            "synthetic pages need Pillow, which is not installed: pip install 'stntool[train]'") from exc
    return Image, ImageDraw, ImageFont


def _cv2():
    from .io import cv2

    return cv2()


@functools.lru_cache(maxsize=256)  # about 0.2 MB each
def _load_font(path, size: int):
    _, _, ImageFont = _pil()
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


# ---------------------------------------------------------------------------------------------- fonts

@dataclass(frozen=True, order=True)
class FontFace:
    """One font file: ``family`` includes its width ("DejaVu Serif Condensed"); ``path`` None is
    Pillow's built-in font."""

    family: str
    style: str
    path: str | None

    @property
    def bold(self) -> bool:
        return bool(re.search(r"bold|demi|black|heavy|semibold", self.style, re.I))

    @property
    def italic(self) -> bool:
        return bool(re.search(r"italic|oblique", self.style, re.I))

    @property
    def mono(self) -> bool:
        return bool(re.search(r"mono|courier|typewriter|code", self.family, re.I))

    @property
    def script(self) -> bool:
        return bool(_SCRIPT.search(self.family))


BUILTIN_FONT = FontFace("Pillow built-in", "Regular", None)


def _face_from_file(path: str):
    """A :class:`FontFace` for a font file, or None when it cannot draw Latin text."""
    try:
        font = _load_font(path, 24)
        family, style = font.getname()
    except (OSError, ValueError):
        return None
    family, style = (family or os.path.basename(path)).strip(), (style or "Regular").strip()
    for word in _WIDTH_WORDS:  # a width is a family of its own, as users pick fonts
        if word.lower() in style.lower():
            family = f"{family} {word}"
            style = re.sub(word, "", style, flags=re.I).strip() or "Regular"
            break
    if _EXCLUDED.search(family):
        return None
    try:  # fonts without Latin letters draw the same box for every letter
        masks = [bytes(font.getmask(c)) for c in "aoH"]
        if len(set(masks)) < 3 or not any(masks[0]):
            return None
    except (OSError, ValueError):
        return None
    return FontFace(family, style, path)


def _font_dirs(extra_dirs) -> tuple:
    dirs = [os.path.expanduser(d) for d in FONT_DIRS]
    dirs += [d for d in os.environ.get("STNTOOL_FONT_DIRS", "").split(os.pathsep) if d]
    dirs += [os.fspath(d) for d in extra_dirs]
    return tuple(dirs)


def find_fonts(extra_dirs=()) -> list:
    """Font faces on this machine that can draw Latin text, sorted by (family, style, path).

    Scans :data:`FONT_DIRS`, the ``STNTOOL_FONT_DIRS`` folders and ``extra_dirs`` recursively for
    ``.ttf``/``.otf``/``.ttc``/``.pfb`` files that Pillow can load. Symbol, dingbat, math and emoji
    fonts are skipped, and when one face exists in several formats only the first of
    ``FONT_EXTENSIONS`` order is kept. Results are cached per folder list.

    Returns
    -------
    list of FontFace
    """
    _pil()
    return list(_find_fonts_cached(_font_dirs(extra_dirs)))


@functools.lru_cache(maxsize=16)
def _find_fonts_cached(dirs: tuple) -> tuple:
    files = set()
    for top in dirs:
        if not os.path.isdir(top):
            continue
        for root, _, names in os.walk(top, followlinks=True):
            for name in names:
                if name.lower().endswith(FONT_EXTENSIONS):
                    files.add(os.path.realpath(os.path.join(root, name)))
    best = {}
    for path in sorted(files):
        face = _face_from_file(path)
        if face is None:
            continue
        key = (face.family.lower(), face.style.lower())
        rank = FONT_EXTENSIONS.index(os.path.splitext(path)[1].lower())
        if key not in best or rank < best[key][0]:
            best[key] = (rank, face)
    return tuple(sorted(face for _, face in best.values()))


def font_families(fonts) -> dict:
    """``{family: [faces]}`` in sorted order."""
    out = {}
    for face in sorted(fonts):
        out.setdefault(face.family, []).append(face)
    return out


def font_split(fonts, split: str = "train") -> list:
    """The faces of one split: ``"heldout"`` keeps :data:`HELDOUT_FAMILIES`, ``"train"`` the rest,
    ``"all"`` everything. Deterministic: it depends on family names only."""
    if split not in ("train", "heldout", "all"):
        raise InvalidArgumentError(f"split must be 'train', 'heldout' or 'all', not {split!r}")
    if split == "all":
        return sorted(fonts)
    held = split == "heldout"
    return sorted(f for f in fonts if (f.family.lower() in HELDOUT_FAMILIES) == held)


# ---------------------------------------------------------------------------------------------- text

_COMMON = tuple("""the of and to in a is that for it as was with be by on not he this are or his from at
which but have an they you were her all she there would their we him been has when who will more no if
out so said what up its about into than them can only other new some time could these two may then do
first any my now such like our over man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state good very
make world still own see men work long here get both between life being under never day same another
know while last might us great old year off come since against go came right used take three""".split())
_ONSETS = ("", "", "b", "c", "d", "f", "g", "h", "l", "m", "n", "p", "r", "s", "t", "v", "w", "st",
           "tr", "pr", "ch", "sh", "th", "br", "cl", "gr", "pl", "qu", "sp", "k")
_NUCLEI = ("a", "e", "i", "o", "u", "a", "e", "ea", "ou", "ai", "io", "ee", "y", "ie")
_CODAS = ("", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "nt", "rs", "ck", "ng", "ll", "ss",
          "tion", "ment", "ed", "ing", "er", "ly")
_STREETS = ("Street", "Road", "Avenue", "Lane", "Square", "Way", "Place")


class _Text:
    """Pseudo-English from a per-page vocabulary: common words plus syllable-built words with Zipf weights."""

    def __init__(self, rng):
        self.rng = rng
        n = 240
        sylls = rng.choice(4, size=n, p=[0.3, 0.4, 0.2, 0.1]) + 1
        ons = rng.integers(len(_ONSETS), size=(n, 4)).tolist()
        nuc = rng.integers(len(_NUCLEI), size=(n, 4)).tolist()
        cod = rng.integers(len(_CODAS), size=n).tolist()
        self.vocab = tuple("".join(_ONSETS[o] + _NUCLEI[u] for o, u in zip(ons[i][:k], nuc[i][:k])) + _CODAS[cod[i]]
                           for i, k in enumerate(sylls.tolist()))
        w = 1.0 / (np.arange(n) + 2.7)
        self.p = w / w.sum()

    def words(self, n: int) -> list:
        rng = self.rng
        common = rng.random(n) < 0.45
        ci = rng.integers(len(_COMMON), size=n)
        vi = rng.choice(len(self.vocab), size=n, p=self.p)
        out = [_COMMON[c] if m else self.vocab[v] for m, c, v in zip(common, ci, vi)]
        caps = rng.random(n) < 0.04
        nums = rng.random(n) < 0.02
        for i in range(n):
            if nums[i]:
                out[i] = str(int(rng.integers(1, 2000)))
            elif caps[i]:
                out[i] = out[i].capitalize()
        return out

    def sentence_words(self, n: int) -> list:
        """About n words in sentences: capitals, commas, full stops."""
        out = []
        while len(out) < n:
            k = int(self.rng.integers(5, 19))
            ws = self.words(k)
            ws[0] = ws[0].capitalize()
            for j in range(1, k - 1):
                if self.rng.random() < 0.07:
                    ws[j] += ","
            ws[-1] += "." if self.rng.random() < 0.93 else ("?" if self.rng.random() < 0.5 else ":")
            out += ws
        return out

    def phrase(self, lo: int, hi: int, title: bool = False) -> str:
        ws = self.words(int(self.rng.integers(lo, hi + 1)))
        if title:
            ws = [w.capitalize() if (i == 0 or len(w) > 3) else w for i, w in enumerate(ws)]
        else:
            ws[0] = ws[0].capitalize()
        return " ".join(ws)

    def name(self) -> str:
        a, b = self.words(2)
        return f"{a.capitalize()} {b.capitalize()}"

    def number(self, kind: str = "int") -> str:
        rng = self.rng
        if kind == "money":
            v = float(rng.lognormal(3.0, 1.2))
            return f"{v:,.2f}"
        if kind == "pct":
            return f"{rng.uniform(0, 100):.1f}%"
        if kind == "date":
            return f"{rng.integers(1990, 2031)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
        if kind == "float":
            return f"{rng.normal(0, 50):.{int(rng.integers(1, 4))}f}"
        return str(int(rng.integers(0, 10 ** int(rng.integers(1, 6)))))

    def cell(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.number(("int", "money", "pct", "float", "date")[int(self.rng.integers(5))])
        return self.phrase(1, 3)

    def address(self) -> list:
        rng = self.rng
        return [self.name(),
                f"{rng.integers(1, 300)} {self.words(1)[0].capitalize()} {_STREETS[rng.integers(len(_STREETS))]}",
                f"{rng.integers(10000, 99999)} {self.words(1)[0].capitalize()}"]


# ---------------------------------------------------------------------------------------------- canvas

class _SafeDraw:
    """ImageDraw whose boxes may come in any corner order (tiny pages make some empty): they are
    sorted, and boxes thinner than a pixel are drawn one pixel wide."""

    def __init__(self, draw):
        self._draw = draw

    def __getattr__(self, name):
        return getattr(self._draw, name)

    @staticmethod
    def _box(xy):
        x0, y0, x1, y1 = (float(v) for v in xy)
        x0, x1 = min(x0, x1), max(x0, x1)
        y0, y1 = min(y0, y1), max(y0, y1)
        return [x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)]

    def rectangle(self, xy, **kw):
        self._draw.rectangle(self._box(xy), **kw)

    def ellipse(self, xy, **kw):
        self._draw.ellipse(self._box(xy), **kw)


class _Canvas:
    """The page being drawn: a Pillow RGB image, its palette, its fonts and the flow helpers."""

    def __init__(self, rng, page_wh, faces, dark: bool, kind: str):
        Image, ImageDraw, _ = _pil()
        self.rng = rng
        self.W, self.H = page_wh
        self.dark = dark
        self.kind = kind
        self.text = _Text(rng)
        self._pick_palette()
        self.img = Image.new("RGB", (self.W, self.H), self.paper)
        self.draw = _SafeDraw(ImageDraw.Draw(self.img))
        self._pick_fonts(faces)
        self.widths = {}
        self.fonts_used = {}
        # a reader's highlighter on some lines (light pages only)
        self.highlighter = None
        if not dark and rng.random() < 0.12:
            marks = [(255, 240, 90), (150, 240, 140), (255, 170, 200), (140, 210, 255)]
            self.highlighter = marks[rng.integers(len(marks))]

    # -- palette ----------------------------------------------------------------------------------
    def _pick_palette(self):
        rng = self.rng
        if self.dark:
            papers = [(20, 20, 24), (28, 36, 64), (24, 48, 36), (40, 40, 44), (8, 8, 8), (50, 30, 60)]
            self.paper = papers[rng.integers(len(papers))]
            v = int(rng.integers(200, 256))
            self.ink = (v, v, v) if rng.random() < 0.7 else (v, int(v * 0.95), int(v * 0.8))
            accents = [(250, 200, 80), (120, 200, 250), (250, 140, 120), (160, 230, 160), self.ink]
        else:
            papers = [(255, 255, 255), (250, 250, 248), (246, 242, 230), (238, 238, 236),
                      (242, 234, 210), (232, 236, 240), (252, 250, 240)]
            self.paper = papers[rng.integers(len(papers))]
            v = int(rng.integers(0, 60))
            inks = [(v, v, v), (v, v, v), (v, v, min(255, v + 50)), (min(255, v + 20), v, v)]
            self.ink = inks[rng.integers(len(inks))]
            accents = [(160, 30, 30), (30, 60, 150), (20, 110, 60), (120, 60, 140), (200, 100, 20), self.ink]
        self.accent = accents[rng.integers(len(accents))]
        self.muted = tuple(int(0.55 * p + 0.45 * i) for p, i in zip(self.paper, self.ink))
        self.shade = tuple(int(0.88 * p + 0.12 * a) for p, a in zip(self.paper, self.accent))

    # -- fonts ------------------------------------------------------------------------------------
    def _pick_fonts(self, faces):
        rng = self.rng
        fams = font_families(faces) or {BUILTIN_FONT.family: [BUILTIN_FONT]}
        names = sorted(fams)
        text_names = [n for n in names if not fams[n][0].script] or names
        mono_names = [n for n in text_names if fams[n][0].mono]
        prop_names = [n for n in text_names if not fams[n][0].mono] or text_names
        if self.kind == "receipt" and mono_names:
            body = mono_names[rng.integers(len(mono_names))]
        elif rng.random() < 0.06 and mono_names:
            body = mono_names[rng.integers(len(mono_names))]
        else:
            body = prop_names[rng.integers(len(prop_names))]
        head = body if rng.random() < 0.55 else prop_names[rng.integers(len(prop_names))]
        script_names = [n for n in names if fams[n][0].script]
        self.families = {"body": body, "head": head,
                         "script": script_names[rng.integers(len(script_names))] if script_names else None,
                         "mono": mono_names[rng.integers(len(mono_names))] if mono_names else body}
        self.fams = fams

    def face(self, role: str = "body", bold: bool = False, italic: bool = False):
        fam = self.families.get(role) or self.families["body"]
        faces = self.fams[fam]
        exact = [f for f in faces if f.bold == bold and f.italic == italic and "light" not in f.style.lower()]
        plain = [f for f in faces if not f.italic and not f.bold]
        pool = exact or ([f for f in faces if f.bold == bold] if bold else plain) or faces
        return pool[0]

    def font(self, size: float, role: str = "body", bold: bool = False, italic: bool = False):
        face = self.face(role, bold, italic)
        size = max(6, int(round(size)))
        fake_bold = bold and not face.bold
        font = _load_font(face.path, size)
        self.fonts_used[id(font)] = font  # alive for the page, so id() keys in self.widths stay valid
        return font, fake_bold

    # -- text ---------------------------------------------------------------------------------------
    def fit_font(self, s: str, size: float, width: float, role: str = "body", bold: bool = False):
        """The font of ``role`` at ``size``, shrunk until ``s`` fits in ``width`` (6 px at least)."""
        while True:
            font, fb = self.font(size, role, bold)
            if size <= 6 or self.width(font, s) <= width:
                return font, fb
            size = max(6.0, size * 0.85)

    def width(self, font, s: str) -> float:
        key = (id(font), s)
        w = self.widths.get(key)
        if w is None:
            w = self.widths[key] = font.getlength(s)
        return w

    def line_height(self, font, leading: float = 1.25) -> int:
        a, d = font.getmetrics()
        return max(4, int(round((a + d) * leading)))

    def put(self, xy, s: str, font, fill=None, fake_bold: bool = False):
        self.draw.text((int(round(xy[0])), int(round(xy[1]))), s, font=font, fill=fill or self.ink,
                       stroke_width=1 if fake_bold else 0, stroke_fill=fill or self.ink)

    def wrap(self, words, font, width: float, indent: float = 0.0) -> list:
        space = self.width(font, " ")
        lines, cur, w = [], [], indent
        for word in words:
            ww = self.width(font, word)
            while ww > width and len(word) > 1:  # a word wider than the column: cut it
                word = word[:-1]
                ww = self.width(font, word)
            if cur and w + space + ww > width:
                lines.append(cur)
                cur, w = [word], ww
            else:
                w += (space if cur else 0.0) + ww
                cur.append(word)
        if cur:
            lines.append(cur)
        return lines

    def draw_line(self, words, font, x, y, width, align="left", last=False, fill=None, fake_bold=False):
        if align == "justify" and not last and len(words) > 1:
            ws = [self.width(font, w) for w in words]
            gap = (width - sum(ws)) / (len(words) - 1)
            if gap < 3 * self.width(font, " "):
                xx = x
                for w, ww in zip(words, ws):
                    self.put((xx, y), w, font, fill, fake_bold)
                    xx += ww + gap
                return
        s = " ".join(words)
        if align in ("center", "right"):
            sw = self.width(font, s)
            x = x + (width - sw) / (2 if align == "center" else 1)
        self.put((x, y), s, font, fill, fake_bold)


class _Flow:
    """Columns filled top to bottom, then left to right."""

    def __init__(self, cols, y0, y1):
        self.cols, self.y0, self.y1 = cols, int(y0), int(y1)
        self.ci, self.y, self.done = 0, int(y0), False

    @property
    def x(self):
        return self.cols[self.ci][0]

    @property
    def w(self):
        return self.cols[self.ci][1] - self.cols[self.ci][0]

    def fit(self, h) -> bool:
        """Room for ``h`` pixels here or at the top of the next column (False when the page is full)."""
        if self.done:
            return False
        if self.y + h <= self.y1:
            return True
        if h > self.y1 - self.y0:
            return False
        self.ci += 1
        if self.ci >= len(self.cols):
            self.done = True
            return False
        self.y = self.y0
        return True

    def fit_block(self, h) -> bool:
        """Like :meth:`fit` for a block that cannot be split, but leaves the column only when little of
        it is left (False without moving otherwise, so a smaller block can be tried)."""
        if self.done:
            return False
        if self.y + h <= self.y1:
            return True
        if self.y1 - self.y > 0.3 * (self.y1 - self.y0) or h > self.y1 - self.y0:
            return False
        return self.fit(h)


# ---------------------------------------------------------------------------------------------- blocks

def _paragraph(cv, flow, font, fb, n_words, align, indent, leading, gap):
    lh = cv.line_height(font, leading)
    words = cv.text.sentence_words(n_words)
    lines = cv.wrap(words, font, flow.w, indent)
    for i, line in enumerate(lines):
        if not flow.fit(lh):
            return False
        x0 = flow.x + (indent if i == 0 else 0)
        if cv.highlighter is not None and cv.rng.random() < 0.06:
            lw = cv.width(font, " ".join(line))
            a = font.getmetrics()[0]
            cv.draw.rectangle([x0 - 1, flow.y + a * 0.1, x0 + lw + 1, flow.y + a * 1.2], fill=cv.highlighter)
        cv.draw_line(line, font, x0, flow.y, flow.w - (indent if i == 0 else 0), align,
                     last=i == len(lines) - 1, fake_bold=fb)
        flow.y += lh
    flow.y += gap
    return True


def _heading(cv, flow, fs, level, numbered, number):
    rng = cv.rng
    size = fs * (1.6 if level == 1 else 1.25)
    font, fb = cv.font(size, "head", bold=True)
    lh = cv.line_height(font, 1.2)
    text = cv.text.phrase(2, 6, title=rng.random() < 0.6)
    if numbered:
        text = f"{number} {text}"
    if rng.random() < 0.2:
        text = text.upper()
    pre = int(fs * rng.uniform(0.4, 1.2))
    if not flow.fit_block(lh + pre + 2 * lh):
        return False
    flow.y += pre
    colour = cv.accent if rng.random() < 0.4 else cv.ink
    words = text.split()
    for line in cv.wrap(words, font, flow.w)[:2]:
        cv.draw_line(line, font, flow.x, flow.y, flow.w, fill=colour, fake_bold=fb)
        flow.y += lh
    if rng.random() < 0.2:
        cv.draw.line([(flow.x, flow.y), (flow.x + flow.w, flow.y)], fill=colour, width=max(1, int(fs / 10)))
        flow.y += int(fs * 0.4)
    flow.y += int(fs * 0.3)
    return True


def _bullet_list(cv, flow, font, fb, fs, leading):
    rng = cv.rng
    lh = cv.line_height(font, leading)
    style = int(rng.integers(5))  # dot, square, dash, "1.", "(a)"
    n = int(rng.integers(2, 7))
    indent = fs * rng.uniform(1.2, 2.5)
    for k in range(n):
        lines = cv.wrap(cv.text.sentence_words(int(rng.integers(3, 25))), font, flow.w - indent)
        for i, line in enumerate(lines):
            if not flow.fit(lh):
                return False
            if i == 0:
                cy = flow.y + lh * 0.45 / leading * 1.0 + fs * 0.05
                bx = flow.x + indent * 0.35
                r = max(1.5, fs * 0.16)
                if style == 0:
                    cv.draw.ellipse([bx - r, cy - r, bx + r, cy + r], fill=cv.ink)
                elif style == 1:
                    cv.draw.rectangle([bx - r, cy - r, bx + r, cy + r], fill=cv.accent)
                elif style == 2:
                    cv.draw.line([(bx - 2 * r, cy), (bx + r, cy)], fill=cv.ink, width=max(1, int(r / 1.5)))
                else:
                    label = f"{k + 1}." if style == 3 else f"({chr(97 + k)})"
                    cv.put((flow.x, flow.y), label, font, fake_bold=fb)
            cv.draw_line(line, font, flow.x + indent, flow.y, flow.w - indent, fake_bold=fb)
            flow.y += lh
    flow.y += int(fs * 0.6)
    return True


def _table(cv, x, y, w, fs, nrows, ncols, style, y_max, font_role="body"):
    """A table at (x, y), at most ``w`` wide; returns its height, or 0 when it does not fit."""
    rng = cv.rng
    font, fb = cv.font(fs * rng.uniform(0.8, 1.0), font_role)
    hfont, hfb = cv.font(fs * 0.95, font_role, bold=True)
    lh = cv.line_height(font, 1.55 if style in ("grid", "zebra") else 1.4)
    cells = [[cv.text.phrase(1, 2, title=True) for _ in range(ncols)]]
    numeric = [rng.random() < 0.6 for _ in range(ncols)]
    numeric[0] = False
    for _ in range(nrows):
        cells.append([cv.text.number(("int", "money", "pct", "float")[int(rng.integers(4))])
                      if numeric[c] else cv.text.phrase(1, 3) for c in range(ncols)])
    pad = fs * 0.5
    colw = [max(cv.width(hfont if r == 0 else font, cells[r][c]) for r in range(len(cells))) + 2 * pad
            for c in range(ncols)]
    total = sum(colw)
    if total > w:
        scale = w / total
        colw = [c * scale for c in colw]
        for r in range(len(cells)):  # truncate what no longer fits
            for c in range(ncols):
                f = hfont if r == 0 else font
                s = cells[r][c]
                while len(s) > 1 and cv.width(f, s) > colw[c] - 2 * pad:
                    s = s[:-1]
                cells[r][c] = s
    elif rng.random() < 0.5:
        extra = (w - total) / ncols
        colw = [c + extra for c in colw]
    h = lh * len(cells)
    if y + h > y_max:
        nfit = int((y_max - y) // lh)
        if nfit < 3:
            return 0
        cells = cells[:nfit]
        h = lh * nfit
    xs = [x]
    for c in colw:
        xs.append(xs[-1] + c)
    tw = xs[-1] - x
    rule = cv.ink
    lw = max(1, int(round(fs / 14)))
    d = cv.draw
    if style == "zebra":
        for r in range(1, len(cells), 2):
            d.rectangle([x, y + r * lh, x + tw, y + (r + 1) * lh - 1], fill=cv.shade)
    if style in ("zebra", "header") or rng.random() < 0.2:
        d.rectangle([x, y, x + tw, y + lh - 1], fill=cv.shade)
    for r, row in enumerate(cells):
        ty = y + r * lh + (lh - cv.line_height(font, 1.0)) / 2
        for c, s in enumerate(row):
            f, b = (hfont, hfb) if r == 0 else (font, fb)
            if numeric[c] and r > 0:
                tx = xs[c + 1] - pad - cv.width(f, s)
            else:
                tx = xs[c] + pad
            cv.put((tx, ty), s, f, fake_bold=b)
    if style == "grid":
        for r in range(len(cells) + 1):
            d.line([(x, y + r * lh), (x + tw, y + r * lh)], fill=rule, width=lw)
        for xx in xs:
            d.line([(xx, y), (xx, y + h)], fill=rule, width=lw)
    elif style in ("booktabs", "header"):
        d.line([(x, y), (x + tw, y)], fill=rule, width=lw + 1)
        d.line([(x, y + lh), (x + tw, y + lh)], fill=rule, width=lw)
        d.line([(x, y + h), (x + tw, y + h)], fill=rule, width=lw + 1)
    return int(h + lw + 1)


def _photo_block(cv, w, h):
    """A photograph-like patch: smooth random colour fields with finer detail."""
    Image, _, _ = _pil()
    cv2 = _cv2()
    rng = cv.rng
    g = rng.random((int(rng.integers(3, 9)), int(rng.integers(3, 9)), 3)).astype(np.float32)
    base = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.random((max(2, h // 8), max(2, w // 8), 1)).astype(np.float32), (w, h),
                      interpolation=cv2.INTER_LINEAR)
    img = base * 200 + fine[..., None] * 60 if fine.ndim == 2 else base * 200 + fine * 60
    if rng.random() < 0.5:
        img = img.mean(axis=2, keepdims=True).repeat(3, axis=2)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _figure(cv, flow, fs):
    rng = cv.rng
    w = int(flow.w * rng.uniform(0.5, 1.0))
    h = int(min(w * rng.uniform(0.35, 0.75), (flow.y1 - flow.y0) * 0.4))
    cap_font, cfb = cv.font(fs * 0.85, "body", italic=rng.random() < 0.5)
    clh = cv.line_height(cap_font, 1.2)
    if not flow.fit_block(h + 2 * clh + fs):
        return False
    x = flow.x + (flow.w - w) // 2 if rng.random() < 0.7 else flow.x
    y = flow.y + int(fs * 0.4)
    kind = int(rng.integers(4))
    d = cv.draw
    lw = max(1, int(fs / 12))
    if kind == 0:  # photo
        cv.img.paste(_photo_block(cv, w, h), (x, y))
    elif kind in (1, 2):  # line plot or bars with axes
        ax0, ay1 = x + int(fs * 2), y + h - int(fs * 1.4)
        ax1, ay0 = x + w - int(fs * 0.5), y + int(fs * 0.3)
        d.line([(ax0, ay0), (ax0, ay1), (ax1, ay1)], fill=cv.ink, width=lw)
        tf, _ = cv.font(fs * 0.6)
        for k in range(5):
            ty = ay1 - (ay1 - ay0) * k / 4
            d.line([(ax0 - fs * 0.3, ty), (ax0, ty)], fill=cv.ink, width=lw)
            cv.put((x, ty - fs * 0.35), str(k * int(rng.integers(1, 30))), tf)
            tx = ax0 + (ax1 - ax0) * k / 4
            d.line([(tx, ay1), (tx, ay1 + fs * 0.3)], fill=cv.ink, width=lw)
            cv.put((tx - fs * 0.3, ay1 + fs * 0.4), str(k * 10), tf)
        if kind == 1:
            for s in range(int(rng.integers(1, 4))):
                n = 30
                v = np.cumsum(rng.normal(0, 1, n))
                v = (v - v.min()) / (np.ptp(v) + 1e-6)
                pts = [(ax0 + (ax1 - ax0) * i / (n - 1), ay1 - (ay1 - ay0) * (0.1 + 0.8 * v[i])) for i in range(n)]
                colour = (cv.ink, cv.accent, cv.muted)[s]
                d.line(pts, fill=colour, width=lw + 1, joint="curve")
        else:
            n = int(rng.integers(3, 12))
            bw = (ax1 - ax0) / n
            for i in range(n):
                bh = (ay1 - ay0) * rng.uniform(0.1, 0.95)
                d.rectangle([ax0 + bw * (i + 0.15), ay1 - bh, ax0 + bw * (i + 0.85), ay1],
                            fill=cv.accent if i % 2 == 0 or rng.random() < 0.5 else cv.muted)
    else:  # diagram: boxes and arrows
        nb = int(rng.integers(2, 5))
        bw = w / (nb * 1.6)
        bf, bfb = cv.font(fs * 0.8)
        for i in range(nb):
            bx = x + i * bw * 1.6
            by = y + h * rng.uniform(0.1, 0.5)
            d.rectangle([bx, by, bx + bw, by + h * 0.35], outline=cv.ink, width=lw)
            cv.put((bx + fs * 0.3, by + fs * 0.3), cv.text.words(1)[0], bf, fake_bold=bfb)
            if i:
                d.line([(bx - bw * 0.6, by + h * 0.17), (bx, by + h * 0.17)], fill=cv.ink, width=lw)
    if rng.random() < 0.35:
        d.rectangle([x, y, x + w, y + h], outline=cv.muted, width=lw)
    cy = y + h + int(fs * 0.4)
    cap = [f"Figure {int(rng.integers(1, 12))}:"] + cv.text.sentence_words(int(rng.integers(4, 20)))
    for line in cv.wrap(cap, cap_font, flow.w)[:2]:
        cv.draw_line(line, cap_font, flow.x, cy, flow.w, align="center" if rng.random() < 0.5 else "left",
                     fake_bold=cfb)
        cy += clh
    flow.y = cy + int(fs * 0.6)
    return True


def _equation(cv, flow, fs):
    rng = cv.rng
    font, fb = cv.font(fs * 1.05, "body", italic=True)
    lh = cv.line_height(font, 1.6)
    if not flow.fit_block(lh):
        return False
    vs = "abcdefghkmnpqrstuvwxyz"
    terms = [f"{vs[rng.integers(len(vs))]}{'^2' if rng.random() < 0.2 else ''}" for _ in range(int(rng.integers(2, 6)))]
    ops = ["+", "-", "=", "/", "+"]
    s = terms[0] + " = " + " ".join(t + " " + ops[rng.integers(len(ops))] for t in terms[1:])[:-2]
    cv.draw_line([s], font, flow.x, flow.y + lh * 0.15, flow.w, align="center", fake_bold=fb)
    nf, _ = cv.font(fs)
    num = f"({int(rng.integers(1, 40))})"
    cv.put((flow.x + flow.w - cv.width(nf, num), flow.y + lh * 0.15), num, nf)
    flow.y += lh
    return True


def _running_text(cv, flow, fs, style):
    """Paragraphs with headings, lists, figures, tables and equations until the page is full."""
    rng = cv.rng
    font, fb = cv.font(fs)
    leading = rng.uniform(1.1, 1.5)
    align = "justify" if rng.random() < style.get("justify", 0.55) else "left"
    indent = fs * rng.uniform(1.0, 2.5) if rng.random() < style.get("indent", 0.4) else 0.0
    pgap = 0 if indent and rng.random() < 0.7 else int(fs * rng.uniform(0.3, 1.0))
    section = [int(rng.integers(1, 6)), 0]
    cum = np.cumsum([style.get("heading", 0.12), style.get("list", 0.08), style.get("figure", 0.06),
                     style.get("table", 0.05), style.get("equation", 0.03)])
    tries = 0
    last = None
    while not flow.done and tries < 400:
        tries += 1
        r = rng.random() if tries < 60 else 1.0  # then paragraphs until the page is full
        block = int(np.searchsorted(cum, r, side="right"))
        if block == last and block < 5:
            block = 5
        last = block
        if block == 0:
            section[1] += 1
            _heading(cv, flow, fs, 2, style.get("numbered", False), f"{section[0]}.{section[1]}")
        elif block == 1:
            _bullet_list(cv, flow, font, fb, fs, leading)
        elif block == 2:
            _figure(cv, flow, fs)
        elif block == 3:
            h = _table(cv, flow.x, flow.y + int(fs * 0.5), flow.w, fs * 0.9, int(rng.integers(3, 10)),
                       int(rng.integers(2, 6)), ("grid", "booktabs", "zebra", "header")[int(rng.integers(4))],
                       flow.y1)
            if h:
                flow.y += h + int(fs * 1.2)
        elif block == 4:
            _equation(cv, flow, fs)
        else:
            _paragraph(cv, flow, font, fb, int(rng.integers(15, 110)), align, indent, leading, pgap)


def _furniture(cv, box, fs, header: bool, footer: bool, number: int):
    """Running header, footer and page number around the text box; returns the shrunk box."""
    rng = cv.rng
    x0, y0, x1, y1 = box
    font, fb = cv.font(fs * 0.8, "body", italic=rng.random() < 0.5)
    lh = cv.line_height(font, 1.2)
    if header:
        yh = y0 - lh - int(fs * 0.8) if y0 > 2 * lh + fs else y0
        txt = cv.text.phrase(2, 6, title=True)
        align = ("left", "center", "right")[int(rng.integers(3))]
        cv.draw_line(txt.split(), font, x0, yh, x1 - x0, align=align, fake_bold=fb)
        if align != "right":
            cv.put((x1 - cv.width(font, str(number)), yh), str(number), font, fake_bold=fb)
        if rng.random() < 0.6:
            cv.draw.line([(x0, yh + lh + 1), (x1, yh + lh + 1)], fill=cv.ink, width=1)
        if yh == y0:
            y0 += lh + int(fs * 0.8)
    if footer:
        yf = y1 + int(fs * 0.6) if y1 + lh + fs * 0.6 < cv.H else y1 - lh
        s = str(number) if rng.random() < 0.6 else f"Page {number} of {number + int(rng.integers(0, 30))}"
        cv.draw_line(s.split(), font, x0, yf, x1 - x0, align=("center", "right")[int(rng.integers(2))], fake_bold=fb)
        if yf < y1:
            y1 = yf - int(fs * 0.5)
        if rng.random() < 0.25:  # footnote above the footer
            nf, nfb = cv.font(fs * 0.75)
            nlh = cv.line_height(nf, 1.15)
            lines = cv.wrap(["1"] + cv.text.sentence_words(int(rng.integers(8, 30))), nf, x1 - x0)[:3]
            top = y1 - nlh * len(lines)
            cv.draw.line([(x0, top - fs * 0.4), (x0 + (x1 - x0) * 0.3, top - fs * 0.4)], fill=cv.ink, width=1)
            for i, line in enumerate(lines):
                cv.draw_line(line, nf, x0, top + i * nlh, x1 - x0, fake_bold=nfb)
            y1 = int(top - fs * 1.0)
    return x0, y0, x1, y1


def _columns(x0, x1, n, gutter):
    w = (x1 - x0 - gutter * (n - 1)) / n
    return [(int(x0 + i * (w + gutter)), int(x0 + i * (w + gutter) + w)) for i in range(n)]


def _title_block(cv, x0, y, w, fs, centred):
    rng = cv.rng
    tf, tfb = cv.font(fs * rng.uniform(1.8, 2.8), "head", bold=True)
    lh = cv.line_height(tf, 1.15)
    align = "center" if centred else "left"
    for line in cv.wrap(cv.text.phrase(3, 9, title=True).split(), tf, w)[:2]:
        cv.draw_line(line, tf, x0, y, w, align=align, fill=cv.accent if rng.random() < 0.3 else cv.ink, fake_bold=tfb)
        y += lh
    if rng.random() < 0.7:
        af, afb = cv.font(fs * 1.05, "body", italic=rng.random() < 0.5)
        names = ", ".join(cv.text.name() for _ in range(int(rng.integers(1, 4))))
        y += int(fs * 0.4)
        cv.draw_line(names.split(), af, x0, y, w, align=align, fake_bold=afb)
        y += cv.line_height(af, 1.3)
    return y + int(fs * rng.uniform(0.8, 2.0))


# ---------------------------------------------------------------------------------------------- layouts

def _layout_article(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    ncols = 1 if rng.random() < 0.6 else 2
    if style.get("kind") == "newspaper":
        ncols = int(rng.integers(3, 6))
    ncols = max(1, min(ncols, int((x1 - x0) // (12 * fs))))  # columns at least 12 em wide
    y = y0
    if rng.random() < style.get("title", 0.6):
        y = _title_block(cv, x0, y, x1 - x0, fs, centred=rng.random() < 0.6)
        if ncols == 2 and rng.random() < 0.5:  # abstract across the columns
            af, afb = cv.font(fs * 0.95, "body", italic=rng.random() < 0.4)
            flow = _Flow([(x0 + int(fs * 2), x1 - int(fs * 2))], y, y1)
            _paragraph(cv, flow, af, afb, int(rng.integers(30, 90)), "justify", 0, 1.25, int(fs))
            y = flow.y
    gutter = int(fs * rng.uniform(1.2, 3.0))
    cols = _columns(x0, x1, ncols, gutter)
    flow = _Flow(cols, y, y1)
    _running_text(cv, flow, fs, style)
    if ncols > 1 and rng.random() < style.get("column_rules", 0.3):
        for (a, _), (_, b) in zip(cols[1:], cols[:-1]):
            xm = (a + b) // 2
            cv.draw.line([(xm, y), (xm, y1)], fill=cv.ink, width=1)


def _layout_newspaper(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    name = cv.text.phrase(1, 3, title=True)
    mf, mfb = cv.fit_font(name, fs * rng.uniform(2.8, 4.5), x1 - x0, "head", bold=True)
    cv.draw_line([name], mf, x0, y0, x1 - x0, align="center", fake_bold=mfb)
    y = y0 + cv.line_height(mf, 1.1)
    df, dfb = cv.font(fs * 0.8)
    cv.draw.line([(x0, y), (x1, y)], fill=cv.ink, width=max(2, int(fs / 6)))
    cv.draw_line([cv.text.number("date"), "·", f"No. {int(rng.integers(1, 9999))}"], df, x0, y + fs * 0.3,
                 x1 - x0, align="center", fake_bold=dfb)
    y += cv.line_height(df, 1.2) + int(fs * 0.5)
    cv.draw.line([(x0, y), (x1, y)], fill=cv.ink, width=1)
    style = dict(style, title=0.0, column_rules=0.8, justify=0.9, indent=0.8, heading=0.15, figure=0.08,
                 list=0.02, equation=0.0)
    _layout_article(cv, (x0, y + int(fs), x1, y1), fs * 0.8, style)


def _layout_letter(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    w = x1 - x0
    y = y0
    # letterhead: logo, name, address
    lf, lfb = cv.font(fs * rng.uniform(1.4, 2.2), "head", bold=True)
    if rng.random() < 0.6:
        r = int(fs * 1.3)
        if rng.random() < 0.5:
            cv.draw.ellipse([x0, y, x0 + 2 * r, y + 2 * r], fill=cv.accent)
        else:
            cv.draw.rectangle([x0, y, x0 + 2 * r, y + 2 * r], fill=cv.accent)
        cv.put((x0 + 2.6 * r, y + r * 0.2), cv.text.phrase(1, 3, title=True), lf, cv.accent, lfb)
        y += 2 * r + int(fs * 0.5)
    else:
        cv.draw_line([cv.text.phrase(1, 3, title=True)], lf, x0, y, w, align="center", fake_bold=lfb)
        y += cv.line_height(lf, 1.2)
    sf, sfb = cv.font(fs * 0.8)
    cv.draw_line(" · ".join(cv.text.address()[1:]).split(), sf, x0, y, w,
                 align=("left", "center", "right")[int(rng.integers(3))], fake_bold=sfb)
    y += cv.line_height(sf, 1.3)
    cv.draw.line([(x0, y), (x1, y)], fill=cv.accent, width=max(1, int(fs / 8)))
    y += int(fs * 2)
    font, fb = cv.font(fs)
    lh = cv.line_height(font, rng.uniform(1.15, 1.45))
    for line in cv.text.address():
        cv.put((x0, y), line, font, fake_bold=fb)
        y += lh
    y += lh
    cv.draw_line([cv.text.number("date")], font, x0, y, w, align="right", fake_bold=fb)
    y += 2 * lh
    cv.put((x0, y), f"Dear {cv.text.name()},", font, fake_bold=fb)
    y += int(1.8 * lh)
    flow = _Flow([(x0, x1)], y, y1)
    align = "justify" if rng.random() < 0.4 else "left"
    for _ in range(int(rng.integers(2, 6))):
        if not _paragraph(cv, flow, font, fb, int(rng.integers(25, 100)), align, 0, lh / cv.line_height(font, 1.0),
                          int(lh * 0.7)):
            return
    if flow.fit(4 * lh):
        cv.put((x0, flow.y), "Sincerely,", font, fake_bold=fb)
        _signature(cv, x0, flow.y + lh * 1.1, fs)
        cv.put((x0, flow.y + 3 * lh), cv.text.name(), font, fake_bold=fb)


def _signature(cv, x, y, fs):
    rng = cv.rng
    if cv.families.get("script") and rng.random() < 0.5:
        f, _ = cv.font(fs * 1.6, "script")
        cv.put((x, y - fs * 0.3), cv.text.name(), f, (30, 40, 120) if not cv.dark else cv.ink)
        return
    n = 40
    t = np.linspace(0, 1, n)
    xs = x + t * fs * rng.uniform(5, 9)
    ys = y + fs * 0.6 + np.sin(t * rng.uniform(10, 30)) * fs * 0.5 * rng.uniform(0.3, 1.0) * (1 - t * 0.5)
    cv.draw.line(list(zip(xs.tolist(), ys.tolist())), fill=(30, 40, 120) if not cv.dark else cv.ink,
                 width=max(1, int(fs / 9)), joint="curve")


def _layout_form(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    w = x1 - x0
    y = _title_block(cv, x0, y0, w, fs * 0.75, centred=rng.random() < 0.5)
    font, fb = cv.font(fs)
    lh = cv.line_height(font, 1.3)
    d = cv.draw
    lw = max(1, int(fs / 14))
    while y < y1 - 3 * lh:
        r = rng.random()
        if r < 0.15:  # section bar
            hf, hfb = cv.font(fs * 1.05, "head", bold=True)
            d.rectangle([x0, y, x1, y + lh * 1.2], fill=cv.accent if rng.random() < 0.5 else cv.shade)
            fill = cv.paper if rng.random() < 0.5 else cv.ink
            cv.put((x0 + fs * 0.4, y + lh * 0.15), cv.text.phrase(1, 4, title=True).upper(), hf, fill, hfb)
            y += int(lh * 1.8)
        elif r < 0.6:  # one to three labelled underlines on a row
            n = int(rng.integers(1, 4))
            cols = _columns(x0, x1, n, int(fs * 1.5))
            for a, b in cols:
                label = cv.text.phrase(1, 3, title=True) + ":"
                lwid = cv.width(font, label)
                cv.put((a, y), label, font, fake_bold=fb)
                base = y + lh * 0.85
                if a + lwid + fs * 1.4 >= b:
                    pass
                elif rng.random() < 0.7:
                    d.line([(a + lwid + fs * 0.4, base), (b, base)], fill=cv.ink, width=lw)
                else:
                    d.rectangle([a + lwid + fs * 0.4, y - lh * 0.15, b, base], outline=cv.ink, width=lw)
                if rng.random() < 0.3 and b - a - lwid > 6 * fs:  # filled in by hand-ish
                    hf, _ = cv.font(fs, "script" if cv.families.get("script") and rng.random() < 0.3 else "body")
                    hw = cv.text.phrase(1, 3)
                    while len(hw) > 1 and cv.width(hf, hw) > b - a - lwid - 2 * fs:
                        hw = hw[:-1]
                    cv.put((a + lwid + fs, y - fs * 0.1), hw, hf, (30, 40, 120) if not cv.dark else cv.ink)
            y += int(lh * rng.uniform(1.6, 2.4))
        elif r < 0.75:  # comb boxes
            label = cv.text.phrase(1, 3, title=True)
            cv.put((x0, y), label, font, fake_bold=fb)
            bx = x0 + cv.width(font, label) + fs
            s = int(lh * 1.0)
            for k in range(int(rng.integers(4, 16))):
                if bx + s > x1:
                    break
                d.rectangle([bx, y - s * 0.1, bx + s, y + s * 0.9], outline=cv.ink, width=lw)
                bx += s + (0 if rng.random() < 0.6 else int(s * 0.3))
            y += int(lh * 1.9)
        elif r < 0.9:  # checkboxes
            n = int(rng.integers(2, 5))
            cols = _columns(x0, x1, n, int(fs))
            s = int(fs * 0.8)
            for a, b in cols:
                d.rectangle([a, y + lh * 0.1, a + s, y + lh * 0.1 + s], outline=cv.ink, width=lw)
                if rng.random() < 0.3:
                    d.line([(a, y + lh * 0.1), (a + s, y + lh * 0.1 + s)], fill=cv.ink, width=lw + 1)
                    d.line([(a + s, y + lh * 0.1), (a, y + lh * 0.1 + s)], fill=cv.ink, width=lw + 1)
                lab = cv.text.phrase(1, 2)
                while len(lab) > 1 and cv.width(font, lab) > b - a - s - fs:
                    lab = lab[:-1]
                cv.put((a + s + fs * 0.5, y), lab, font, fake_bold=fb)
            y += int(lh * 1.8)
        else:  # small table or instructions
            if rng.random() < 0.5:
                h = _table(cv, x0, y, w, fs * 0.9, int(rng.integers(2, 6)), int(rng.integers(3, 6)), "grid", y1)
                y += (h or lh) + int(lh * 0.8)
            else:
                flow = _Flow([(x0, x1)], y, y1)
                sf, sfb = cv.font(fs * 0.85, italic=rng.random() < 0.3)
                _paragraph(cv, flow, sf, sfb, int(rng.integers(10, 50)), "left", 0, 1.2, int(lh * 0.6))
                y = flow.y
    if y < y1 - 2 * lh:
        d.line([(x1 - w * 0.4, y + lh), (x1, y + lh)], fill=cv.ink, width=lw)


def _layout_table(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    y = _title_block(cv, x0, y0, x1 - x0, fs * 0.7, centred=rng.random() < 0.5)
    nrows = int(rng.integers(8, 40))
    ncols = int(rng.integers(3, 8))
    h = _table(cv, x0, y, x1 - x0, fs, nrows, ncols, ("grid", "booktabs", "zebra", "header")[int(rng.integers(4))], y1)
    flow = _Flow([(x0, x1)], y + h + int(fs * 1.2), y1)
    font, fb = cv.font(fs * 0.85)
    while not flow.done and flow.y < y1 - fs * 2:
        if not _paragraph(cv, flow, font, fb, int(rng.integers(10, 60)), "left", 0, 1.2, int(fs * 0.6)):
            break


def _layout_invoice(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    w = x1 - x0
    name = cv.text.phrase(1, 2, title=True)
    lf, lfb = cv.fit_font(name + "    INVOICE", fs * 2.0, w, "head", bold=True)
    cv.put((x0, y0), name, lf, cv.accent, lfb)
    cv.draw_line(["INVOICE"], lf, x0, y0, w, align="right", fake_bold=lfb)
    y = y0 + cv.line_height(lf, 1.4)
    font, fb = cv.font(fs * 0.95)
    lh = cv.line_height(font, 1.3)
    for k, (a, b) in enumerate(_columns(x0, x1, 2, int(fs * 2))):
        yy = y
        cv.put((a, yy), ("Bill to:", "Ship to:")[k], *cv.font(fs * 0.95, bold=True))
        yy += lh
        for line in cv.text.address():
            cv.put((a, yy), line, font, fake_bold=fb)
            yy += lh
    y += 5 * lh
    for lab in ("Invoice no.", "Date", "Due"):
        cv.put((x0, y), lab, font, fake_bold=fb)
        cv.put((x0 + w * 0.3, y), cv.text.number("date" if lab != "Invoice no." else "int"), font, fake_bold=fb)
        y += lh
    y += lh
    h = _table(cv, x0, y, w, fs * 0.9, int(rng.integers(3, 14)), int(rng.integers(3, 6)),
               ("grid", "booktabs", "zebra", "header")[int(rng.integers(4))], y1 - 6 * lh)
    y += h + lh
    bf, bfb = cv.font(fs, bold=True)
    for lab in ("Subtotal", "Tax", "Total"):
        if y > y1 - lh:
            break
        f, b = (bf, bfb) if lab == "Total" else (font, fb)
        val = cv.text.number("money")
        cv.put((x1 - w * 0.4, y), lab, f, fake_bold=b)
        cv.put((x1 - cv.width(f, val), y), val, f, fake_bold=b)
        y += lh
    flow = _Flow([(x0, x1)], y + lh, y1)
    sf, sfb = cv.font(fs * 0.8, italic=True)
    _paragraph(cv, flow, sf, sfb, int(rng.integers(10, 40)), "left", 0, 1.2, 0)


def _layout_receipt(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    w = x1 - x0
    font, fb = cv.font(fs, "mono" if rng.random() < 0.8 else "body")
    shop = cv.text.phrase(1, 3).upper()
    bf, bfb = cv.fit_font(shop, fs * 1.4, w, "mono", bold=True)
    lh = cv.line_height(font, rng.uniform(1.1, 1.35))
    y = y0
    cv.draw_line([shop], bf, x0, y, w, align="center", fake_bold=bfb)
    y += cv.line_height(bf, 1.3)
    for line in cv.text.address()[1:] + [f"TEL {rng.integers(100, 999)}-{rng.integers(1000, 9999)}"]:
        cv.draw_line([line], font, x0, y, w, align="center", fake_bold=fb)
        y += lh
    dash = "-" if rng.random() < 0.6 else "="
    nd = max(1, int(w / max(1.0, cv.width(font, dash))))

    def rule(y):
        cv.put((x0, y), dash * nd, font, fake_bold=fb)
        return y + lh

    y = rule(y)
    total = 0.0
    for _ in range(int(rng.integers(4, 30))):
        if y > y1 - 7 * lh:
            break
        name = cv.text.phrase(1, 3).upper()
        price = float(rng.lognormal(1.5, 0.8))
        total += price
        p = f"{price:.2f}"
        while len(name) > 1 and cv.width(font, name) > w - cv.width(font, p) - fs:
            name = name[:-1]
        cv.put((x0, y), name, font, fake_bold=fb)
        cv.put((x1 - cv.width(font, p), y), p, font, fake_bold=fb)
        y += lh
        if rng.random() < 0.15:
            q = f"  {rng.integers(2, 6)} x {price / 3:.2f}"
            cv.put((x0, y), q, font, fake_bold=fb)
            y += lh
    y = rule(y)
    cash = math.ceil(total / 10) * 10
    for lab, val in (("TOTAL", total), ("CASH", cash), ("CHANGE", cash - total)):
        f, b = (bf, bfb) if lab == "TOTAL" else (font, fb)
        s = f"{val:.2f}"
        cv.put((x0, y), lab, f, fake_bold=b)
        cv.put((x1 - cv.width(f, s), y), s, f, fake_bold=b)
        y += cv.line_height(f, 1.2)
    y = rule(y)
    cv.draw_line([cv.text.number("date"), f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}"], font, x0, y, w,
                 align="center", fake_bold=fb)
    y += lh * 1.5
    if y < y1 - 3 * lh and rng.random() < 0.7:  # barcode
        bx, bh = x0 + w * 0.15, lh * 2.2
        while bx < x1 - w * 0.15:
            bw = int(rng.integers(1, 4))
            cv.draw.rectangle([bx, y, bx + bw - 1, y + bh], fill=cv.ink)
            bx += bw + int(rng.integers(1, 4))
        y += bh + lh * 0.5
    if y < y1 - lh:
        cv.draw_line(["THANK", "YOU"], font, x0, y, w, align="center", fake_bold=fb)


def _layout_slide(cv, box, fs, style):
    rng = cv.rng
    x0, y0, x1, y1 = box
    w = x1 - x0
    d = cv.draw
    title = cv.text.phrase(2, 6, title=True)
    tf, tfb = cv.fit_font(title, fs * rng.uniform(2.0, 2.8), w, "head", bold=rng.random() < 0.7)
    tlh = cv.line_height(tf, 1.2)
    if rng.random() < 0.4:  # title band
        d.rectangle([0, 0, cv.W, y0 + tlh + fs], fill=cv.accent)
        fill = cv.paper if sum(cv.accent) < 380 else cv.ink
    else:
        fill = cv.accent if rng.random() < 0.5 else cv.ink
    cv.draw_line(title.split(), tf, x0, y0, w, align="left" if rng.random() < 0.7 else "center",
                 fill=fill, fake_bold=tfb)
    y = y0 + tlh + int(fs * 2)
    has_fig = rng.random() < 0.4
    right = x1 if not has_fig else int(x0 + w * 0.55)
    flow = _Flow([(x0, right)], y, y1 - int(fs * 1.5))
    font, fb = cv.font(fs * rng.uniform(1.1, 1.5))
    fsb = fs * 1.3
    while not flow.done:
        if not _bullet_list(cv, flow, font, fb, fsb, 1.3):
            break
    if has_fig:
        ff = _Flow([(int(x0 + w * 0.6), x1)], y, y1 - int(fs * 1.5))
        _figure(cv, ff, fs)
    sf, sfb = cv.font(fs * 0.8)
    cv.draw_line([str(int(rng.integers(1, 60)))], sf, x0, y1 - fs, w, align="right", fake_bold=sfb)


def _layout_book(cv, box, fs, style):
    style = dict(style, title=0.15, justify=0.92, indent=0.9, heading=0.02, list=0.0, figure=0.01, table=0.0,
                 equation=0.01)
    x0, y0, x1, y1 = box
    flow = _Flow([(x0, x1)], y0, y1)
    if cv.rng.random() < style["title"]:
        flow.y = _title_block(cv, x0, y0 + int(fs * 3), x1 - x0, fs * 0.9, centred=True)
    _running_text(cv, flow, fs, style)


_LAYOUTS = {
    "article": (_layout_article, dict(title=0.6)),
    "report": (_layout_article, dict(title=0.35, numbered=True, heading=0.16, table=0.12, figure=0.1, list=0.1)),
    "book": (_layout_book, {}),
    "letter": (_layout_letter, {}),
    "form": (_layout_form, {}),
    "table": (_layout_table, {}),
    "receipt": (_layout_receipt, {}),
    "slide": (_layout_slide, {}),
    "newspaper": (_layout_newspaper, dict(kind="newspaper")),
    "invoice": (_layout_invoice, {}),
}

# page aspect (width / height) per kind: A4, US letter, A5, receipts, 4:3 and 16:9 slides
_ASPECTS = {"receipt": (0.28, 0.45), "slide": (1.33, 1.78)}
_PAPER = (1 / math.sqrt(2), 8.5 / 11, 0.75, 0.68)


# ---------------------------------------------------------------------------------------------- page

@dataclass
class Page:
    """A rendered page and what was drawn.

    ``image``: uint8 (H, W) grey or (H, W, 3) BGR. ``page_box``: the paper's (x0, y0, x1, y1) in
    image pixels, ends exclusive (the whole image unless page-in-photo). ``degradations``: the
    parameters of every degradation applied (absent keys were not applied). :meth:`to_record`
    holds everything but the pixels; ``make_page(tuple(r["seed"]), r["size"], split=r["split"],
    kind=r["kind"], colour=r["colour"], degrade=r["degrade"])`` draws the same page again (with
    the same fonts installed).
    """

    image: np.ndarray
    page_box: tuple
    kind: str
    split: str
    light_on_dark: bool
    fonts: tuple
    body_px: int
    degradations: dict
    seed: tuple
    degraded: bool = True

    def to_record(self) -> dict:
        """JSON-ready description (everything but the pixels)."""
        return {"schema": SCHEMA_VERSION, "seed": list(self.seed), "kind": self.kind, "split": self.split,
                "size": list(self.image.shape[:2]), "colour": self.image.ndim == 3, "degrade": self.degraded,
                "page_box": list(self.page_box),
                "light_on_dark": self.light_on_dark, "fonts": list(self.fonts), "body_px": self.body_px,
                "degradations": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.degradations.items()}}


def _seed_entropy(seed) -> tuple:
    if isinstance(seed, (bool, np.bool_)):
        raise InvalidArgumentError(f"seed must be a non-negative int or a tuple of them, not {seed!r}")
    if isinstance(seed, (int, np.integer)):
        seed = (int(seed),)
    try:
        ent = tuple(int(s) for s in seed)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"seed must be a non-negative int or a tuple of them, not {seed!r}") from None
    if not ent or any(s < 0 for s in ent):
        raise InvalidArgumentError(f"seed must be a non-negative int or a tuple of them, not {seed!r}")
    return ent


def _check_size(size):
    if size is None:
        return None
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"size must be (height, width), not {size!r}") from None
    if h < 32 or w < 32 or h * w > 1 << 26:
        raise InvalidArgumentError(f"size must be (height, width) with sides >= 32 px and at most 64 MP, not {size!r}")
    return h, w


def _choose_kind(rng, split, kind):
    if kind is not None:
        if kind not in LAYOUT_KINDS:
            raise InvalidArgumentError(f"kind must be one of {', '.join(LAYOUT_KINDS)}, not {kind!r}")
        rng.random()
        return kind
    names = list(_TRAIN_KIND_WEIGHTS)
    p = np.array([_TRAIN_KIND_WEIGHTS[n] for n in names])
    if split in ("heldout", "all"):
        extra = 1.0 if split == "heldout" else 0.25  # heldout: half the pages use heldout-only layouts
        names += list(HELDOUT_LAYOUTS)
        p = np.concatenate([p, np.full(len(HELDOUT_LAYOUTS), extra / len(HELDOUT_LAYOUTS))])
    p = p / p.sum()
    u = rng.random()
    return names[min(int(np.searchsorted(np.cumsum(p), u, side="right")), len(names) - 1)]


def make_page(seed, size=None, fonts=None, split: str = "train", colour: bool = False, kind: str | None = None,
              degrade: bool = True) -> Page:
    """Render one upright synthetic page and say what is on it.

    Parameters
    ----------
    seed : int or tuple of ints
        Seeds a ``numpy.random.SeedSequence``; the same seed gives the same page.
    size : (H, W) or None
        Output image size in pixels. None: 600-900 px tall (about 760-1000 px wide for slides),
        with the aspect of the paper (A4, letter, A5, receipt, 4:3 or 16:9), or of a photo frame.
    fonts : sequence of FontFace or None
        Faces to draw with, used as given. None: :func:`find_fonts` filtered by ``split``
        (:func:`font_split`); Pillow's built-in font when that leaves none.
    split : "train", "heldout" or "all"
        Font families and layouts to use (:data:`HELDOUT_FAMILIES`, :data:`HELDOUT_LAYOUTS`).
    colour : bool
        False: uint8 (H, W) grey. True: uint8 (H, W, 3) BGR.
    kind : one of LAYOUT_KINDS or None
        Force a layout; None draws one for the split.
    degrade : bool
        False gives the clean page: full frame, no texture, lighting, blur, noise or JPEG. The
        layout is the same as with ``degrade=True``.

    Returns
    -------
    Page
    """
    if split not in ("train", "heldout", "all"):
        raise InvalidArgumentError(f"split must be 'train', 'heldout' or 'all', not {split!r}")
    ent = _seed_entropy(seed)
    size = _check_size(size)
    _pil()
    faces = font_split(find_fonts(), split) if fonts is None else list(fonts)
    if any(not isinstance(f, FontFace) for f in faces):
        raise InvalidArgumentError("fonts must be FontFace objects (see stntool.pages.find_fonts)")
    # the length first: SeedSequence pads with zeros, so (s,) and (s, 0) would otherwise collide
    ss = np.random.SeedSequence((len(ent),) + ent)
    layout_ss, texture_ss, degrade_ss, noise_ss = ss.spawn(4)
    rng = np.random.default_rng(layout_ss)
    drng = np.random.default_rng(degrade_ss)
    kind = _choose_kind(rng, split, kind)

    # geometry: image size, photo or full frame, paper size inside it
    lo, hi = _ASPECTS.get(kind, (None, None))
    aspect = float(rng.uniform(lo, hi)) if lo else float(_PAPER[rng.integers(len(_PAPER))] * rng.uniform(0.97, 1.03))
    # the same draws whether or not size is given, so make_page(seed, size=page.image.shape[:2],
    # kind=page.kind) reproduces make_page(seed)
    u_size = rng.random()
    photo = bool(degrade) and drng.random() < 0.4
    fill = float(drng.uniform(0.62, 0.93))
    frame_aspect = aspect * float(drng.uniform(0.85, 1.25))  # a camera frame around the paper
    if size is None:
        if kind == "slide":
            W = 760 + int(u_size * 241)
            H = int(round(W / (frame_aspect if photo else aspect)))
        else:
            H = 600 + int(u_size * 301)
            W = int(round(H * (frame_aspect if photo else aspect)))
    else:
        H, W = size
    if photo:
        pw, ph = (W * fill, W * fill / aspect) if W / H < aspect else (H * fill * aspect, H * fill)
        pw, ph = max(32, int(pw)), max(32, int(ph))
    else:
        pw, ph = W, H

    dark = bool(rng.random() < (0.4 if kind == "slide" else 0.06))
    cv = _Canvas(rng, (pw, ph), faces, dark, kind)
    short = min(pw, ph)
    fs = {"receipt": pw * rng.uniform(0.045, 0.07), "slide": ph * rng.uniform(0.03, 0.045)}.get(
        kind, ph * rng.uniform(0.010, 0.021))
    fs = max(7.0, fs)
    margin_x = short * rng.uniform(0.04, 0.12)
    margin_y = short * rng.uniform(0.04, 0.12)
    box = (int(margin_x), int(margin_y), int(pw - margin_x), int(ph - margin_y))
    if kind not in ("receipt", "slide"):
        box = _furniture(cv, box, fs, rng.random() < 0.5, rng.random() < 0.7, int(rng.integers(1, 400)))
    fn, style = _LAYOUTS[kind]
    fn(cv, box, fs, dict(style))

    rgb = np.asarray(cv.img)
    families = tuple(sorted({cv.face(r).family for r in ("body", "head")}))
    deg = {}
    if degrade:
        img, page_box = _degrade(rgb, (H, W), (pw, ph), photo, dark, kind == "slide", colour, drng,
                                 np.random.default_rng(texture_ss), np.random.default_rng(noise_ss), deg)
    else:
        img, page_box = rgb, (0, 0, pw, ph)
    cv2 = _cv2()
    if colour:
        img = np.ascontiguousarray(img[..., ::-1]) if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    elif img.ndim == 3:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return Page(img, page_box, kind, split, dark, families, int(round(fs)), deg, ent, bool(degrade))


def render_page(seed, size=None, fonts=None, split: str = "train", colour: bool = False, kind: str | None = None,
                degrade: bool = True) -> np.ndarray:
    """One upright synthetic page: uint8 (H, W) grey, or (H, W, 3) BGR when ``colour``.

    Same parameters as :func:`make_page`, which also returns the page box and what was drawn.

    >>> img = render_page((3, 0), size=(400, 300), kind="letter")   # doctest: +SKIP
    >>> img.shape                                                   # doctest: +SKIP
    (400, 300)
    """
    return make_page(seed, size, fonts, split, colour, kind, degrade).image


def synthetic_pages(n: int, seed, **kwargs):
    """Yield ``n`` pages; page ``i`` is ``render_page((seed, i), **kwargs)`` (or ``(*seed, i)``
    for a tuple seed), so any page can be regenerated alone."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InvalidArgumentError(f"n must be a non-negative int, not {n!r}")
    base = _seed_entropy(seed)
    for i in range(int(n)):
        yield render_page(base + (i,), **kwargs)


# ---------------------------------------------------------------------------------------------- degradations

def _smooth_noise(rng, hw, cells, dtype=np.float32):
    """Low-frequency noise in [0, 1] of shape hw: a (cells x cells) random grid, cubic-upsampled."""
    cv2 = _cv2()
    h, w = hw
    gh = max(2, int(cells * h / max(h, w)) + 1)
    gw = max(2, int(cells * w / max(h, w)) + 1)
    g = rng.random((gh, gw)).astype(dtype)
    out = cv2.resize(g, (w, h), interpolation=cv2.INTER_CUBIC)
    return out


def _background(rng, H, W, base_rgb, colour: bool):
    """A desk-like background, float32 (H, W, 3) RGB or (H, W) grey; nothing axis-aligned."""
    cv2 = _cv2()
    kind = int(rng.integers(4))
    base = np.array(base_rgb, np.float32)
    if not colour:
        base = np.float32(0.299 * base[0] + 0.587 * base[1] + 0.114 * base[2])
    if kind == 1:  # wood grain at a random angle
        a = rng.uniform(0, math.pi)
        u = ((np.arange(W, dtype=np.float32) * math.cos(a))[None, :]
             + (np.arange(H, dtype=np.float32) * math.sin(a))[:, None])
        warp = _smooth_noise(rng, (H, W), 6) * np.float32(rng.uniform(20, 60))
        grain = np.sin((u + warp) * np.float32(rng.uniform(0.03, 0.1)))
        field = 0.85 + 0.15 * _smooth_noise(rng, (H, W), 8) + 0.06 * grain
    elif kind == 2:  # fabric / carpet: fine noise
        field = 0.85 + 0.3 * cv2.GaussianBlur(rng.random((H, W), dtype=np.float32), (0, 0), 1.0)
    else:  # plain or mottled
        field = 0.85 + 0.3 * _smooth_noise(rng, (H, W), int(rng.integers(3, 12)))
    bg = field[..., None] * base if colour else field * base
    if kind == 3:  # clutter: rotated shapes (other papers, objects)
        for _ in range(int(rng.integers(1, 5))):
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
            w, h = rng.uniform(0.1, 0.6) * W, rng.uniform(0.1, 0.6) * H
            box = cv2.boxPoints(((cx, cy), (w, h), rng.uniform(0, 180))).astype(np.int32)
            col = rng.uniform(30, 250, 3)
            cv2.fillPoly(bg, [box], tuple(float(c) for c in col) if colour else float(col.mean()))
    return np.ascontiguousarray(bg, dtype=np.float32)


def _times(img, field):
    """img * field for a (H, W) field and a grey or RGB image."""
    return img * (field[..., None] if img.ndim == 3 else field)


def _degrade(rgb, hw, pwh, photo, dark, screen, colour, drng, trng, nrng, rec):
    """Apply the degradations to an RGB page; returns (image, page_box)."""
    cv2 = _cv2()
    H, W = hw
    pw, ph = pwh
    r = drng.random(12)  # one draw per switch, in a fixed order, whether used or not
    src = rgb if colour else cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    page = src.astype(np.float32)
    paper_level = float(np.median(page[:: max(1, ph // 32), :: max(1, pw // 32)]))
    # ink bleed: ink spreads (min filter for dark ink, max filter for light ink)
    if r[0] < 0.3:
        k = int(drng.integers(2, 4))
        alpha = float(drng.uniform(0.25, 0.7))
        kernel = np.ones((k, k), np.uint8)
        spread = (cv2.dilate if dark else cv2.erode)(src, kernel).astype(np.float32)
        page = page * (1 - alpha) + spread * alpha
        rec["ink_bleed"] = (k, round(alpha, 3))
    # show-through from the other side: mirrored, blurred, faint
    if r[1] < 0.15 and not dark and not screen:
        a = float(drng.uniform(0.04, 0.12))
        back = cv2.GaussianBlur(page[:, ::-1], (0, 0), 1.5)
        page = page - a * (paper_level - back).clip(0, None)
        rec["show_through"] = round(a, 3)
    # paper texture: low-frequency mottling and fibres
    if r[2] < 0.7:
        amp = float(drng.uniform(0.01, 0.05))
        mott = _smooth_noise(trng, (ph, pw), int(trng.integers(4, 16)))
        grain = trng.random((ph // 2 + 1, pw // 2 + 1), dtype=np.float32)
        grain = cv2.resize(grain, (pw, ph), interpolation=cv2.INTER_LINEAR)
        tex = 1.0 - amp * (mott - 0.5) * 2 - amp * 0.3 * (grain - 0.5)
        nf = int(trng.integers(0, 40))
        if nf:
            fib = np.zeros((ph, pw), np.float32)
            for _ in range(nf):
                x, y = trng.uniform(0, pw), trng.uniform(0, ph)
                ang, ln = trng.uniform(0, 2 * math.pi), trng.uniform(4, 25)
                pts = [(x + ln * t * math.cos(ang + 0.6 * math.sin(4 * t)),
                        y + ln * t * math.sin(ang + 0.6 * math.sin(4 * t))) for t in np.linspace(0, 1, 6)]
                cv2.polylines(fib, [np.array(pts, np.int32)], False, 1.0, 1, cv2.LINE_AA)
            tex = tex - fib * amp * 1.5
        page = _times(page, tex)
        rec["paper_texture"] = (round(amp, 3), nf)
    # scanner edge: a dark band along one side (full-frame scans only)
    if not photo and r[3] < 0.1:
        side = int(drng.integers(4))
        t = max(2, int(min(pw, ph) * drng.uniform(0.005, 0.03)))
        v = float(drng.uniform(0, 60))
        sl = [np.s_[:t, :], np.s_[-t:, :], np.s_[:, :t], np.s_[:, -t:]][side]
        page[sl] = v
        rec["scanner_edge"] = (side, t)
    # a coffee ring: a blurred, broken ring that darkens (and browns) the paper
    if r[10] < 0.06:
        cx, cy = float(trng.uniform(0, pw)), float(trng.uniform(0, ph))
        rad = float(trng.uniform(0.05, 0.15)) * min(pw, ph)
        ring = np.zeros((ph, pw), np.float32)
        start = float(trng.uniform(0, 360))
        cv2.ellipse(ring, (int(cx), int(cy)), (int(rad), int(rad * trng.uniform(0.85, 1.0))), 0.0, start,
                    start + float(trng.uniform(200, 360)), 1.0, max(2, int(rad * 0.08)), cv2.LINE_AA)
        ring = cv2.GaussianBlur(ring, (0, 0), max(1.0, rad * 0.04))
        a = float(drng.uniform(0.25, 0.6))
        if colour:  # brown: blue darkens most (RGB)
            page = page * (1 - a * ring[..., None] * np.float32([0.6, 0.8, 1.0]))
        else:
            page = _times(page, 1 - a * ring)
        rec["stain"] = round(a, 3)
    # punch holes along the left edge of a scanned sheet
    if not photo and not screen and r[11] < 0.05:
        n = int(drng.integers(2, 4))
        rad = max(2, int(min(pw, ph) * 0.018))
        xc = int(pw * 0.035) + rad
        v = float(drng.uniform(10, 80))
        for k in range(n):
            yc = int(ph * (0.5 + (k - (n - 1) / 2) * (0.3 if n == 2 else 0.25)))
            cv2.circle(page, (xc, yc), rad, (v, v, v) if page.ndim == 3 else v, -1, cv2.LINE_AA)
        rec["punch_holes"] = n
    # page in a photo: background, soft shadow, the paper axis-aligned inside
    if photo:
        palette = [(120, 85, 55), (160, 120, 80), (70, 70, 75), (190, 190, 185), (40, 45, 60), (110, 130, 100),
                   (200, 170, 140), (25, 25, 25)]
        col = palette[int(drng.integers(len(palette)))]
        img = _background(trng, H, W, col, colour)
        x0 = int(drng.integers(0, max(1, W - pw + 1)))
        y0 = int(drng.integers(0, max(1, H - ph + 1)))
        sh = float(drng.uniform(0.2, 0.6))
        sdx, sdy = (int(v) for v in drng.integers(-int(0.02 * W) - 1, int(0.02 * W) + 2, 2))
        mask = np.zeros((H, W), np.float32)
        mask[max(0, y0 + sdy):max(0, y0 + sdy + ph), max(0, x0 + sdx):max(0, x0 + sdx + pw)] = 1.0
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.01 * max(H, W)))
        img = _times(img, 1 - sh * mask)
        img[y0:y0 + ph, x0:x0 + pw] = page
        page_box = (x0, y0, x0 + pw, y0 + ph)
        rec["photo"] = {"background": col, "page_box": page_box, "shadow": round(sh, 3)}
    else:
        img = page
        page_box = (0, 0, pw, ph)
    # uneven lighting: gradient, vignette, colour cast
    if r[4] < (0.8 if photo else 0.35):
        yy = (np.arange(H, dtype=np.float32) / H - 0.5)[:, None]
        xx = (np.arange(W, dtype=np.float32) / W - 0.5)[None, :]
        a = drng.uniform(0, 2 * math.pi)
        g = float(drng.uniform(0.05, 0.45))
        v = float(drng.uniform(0.0, 0.6))
        cx, cy = drng.uniform(-0.3, 0.3, 2)
        light = 1.0 + g * (xx * math.cos(a) + yy * math.sin(a)) - v * ((xx - cx) ** 2 + (yy - cy) ** 2)
        light = np.clip(light, 0.3, 1.3).astype(np.float32)
        cast = drng.uniform(0.94, 1.06, 3).astype(np.float32)
        img = _times(img, light)
        if colour:
            img = img * cast
        rec["lighting"] = (round(g, 3), round(v, 3))
    # blur: Gaussian, or resolution loss
    if r[5] < 0.5:
        if r[6] < 0.7:
            s = float(drng.uniform(0.3, 1.1))
            img = cv2.GaussianBlur(img, (0, 0), s)
            rec["blur"] = round(s, 3)
        else:
            f = float(drng.uniform(0.4, 0.8))
            small = cv2.resize(img, (max(8, int(W * f)), max(8, int(H * f))), interpolation=cv2.INTER_AREA)
            img = cv2.resize(small, (W, H), interpolation=cv2.INTER_LINEAR)
            rec["resample"] = round(f, 3)
    # contrast and gamma
    if r[7] < 0.5:
        c = float(drng.uniform(0.7, 1.15))
        gmm = float(drng.uniform(0.75, 1.35))
        lut = np.clip((255.0 * (np.arange(256) / 255.0) ** gmm - 128.0) * c + 128.0, 0, 255).astype(np.float32)
        img = lut[np.clip(img + 0.5, 0, 255).astype(np.uint8)]
        rec["contrast_gamma"] = (round(c, 3), round(gmm, 3))
    # sensor noise
    if r[8] < 0.6:
        s = float(drng.uniform(1.0, 9.0))
        img = img + nrng.standard_normal(img.shape, dtype=np.float32) * s
        rec["noise"] = round(s, 3)
    out = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    # JPEG artefacts
    if r[9] < 0.5:
        q = int(drng.integers(25, 91))
        src = out if out.ndim == 2 else out[..., ::-1]
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(src), [cv2.IMWRITE_JPEG_QUALITY, q])
        if ok:
            dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            out = dec if dec.ndim == 2 else dec[..., ::-1]
        rec["jpeg"] = q
    return out, page_box
