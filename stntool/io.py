"""Reading and writing images safely: byte-level I/O, header checks, atomic writes, discovery, JSONL.

Everything here works on bytes that stntool reads and writes itself; OpenCV only ever sees
memory buffers (``cv2.imdecode`` / ``cv2.imencode``), never paths, so names that are not valid
UTF-8 work. Importing this module does not import OpenCV or numba.

Metadata: decoding keeps pixels only; the batch runner carries an input's ICC colour profile
(:func:`icc_profile`) to its JPEG, PNG and WebP outputs (:func:`encode_image`'s ``icc``). EXIF (after a JPEG's
or TIFF's orientation is applied), XMP, text chunks, DPI and animation frames beyond the first are not carried.

Layouts after decoding: gray (H, W), gray+alpha (H, W, 2), BGR (H, W, 3), BGRA (H, W, 4), in
uint8, uint16 or float32. Palette PNGs expand to BGR, or BGRA when they carry transparency; CMYK
JPEGs convert to BGR; animated and multi-page files give their first frame (see
:func:`frame_count`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import struct
import sys
import tempfile
import threading
import zlib

import numpy as np

from ._interrupts import sigint_deferred
from .errors import ImageReadError, ImageWriteError, InvalidArgumentError

#: Extensions picked up when scanning directories (lower case).
IMAGE_EXTENSIONS = frozenset(
    ".png .jpg .jpeg .jpe .webp .tif .tiff .bmp .dib .gif .pgm .ppm .pbm .pnm .pxm .jp2 .exr .hdr .pic .sr .ras"
    .split())
#: ``--format`` names to file extensions.
FORMAT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif", "tiff": ".tif",
                     "bmp": ".bmp"}
#: Extensions OpenCV can write (``--format same`` keeps these where the build has the encoder, :func:`can_write`;
#: others become .png).
WRITABLE_EXTENSIONS = frozenset(".png .jpg .jpeg .jpe .webp .tif .tiff .bmp .pgm .ppm .pnm .exr .hdr".split())
_CAN_WRITE = {}


def unwritable(ext: str) -> str | None:
    """Why files of extension ``ext`` cannot be written (for an error message), or None when they can."""
    if can_write(ext):
        return None
    return "this OpenCV build has no encoder for them" if ext.lower() in WRITABLE_EXTENSIONS else "not an image format"


def can_write(ext: str) -> bool:
    """Whether files of extension ``ext`` (``".png"``) can be written: one of :data:`WRITABLE_EXTENSIONS` whose
    encoder this OpenCV build has (builds without OpenEXR cannot write ``.exr``). Imports OpenCV."""
    ext = ext.lower()
    if ext not in WRITABLE_EXTENSIONS:
        return False
    known = _CAN_WRITE.get(ext)
    if known is None:
        known = _CAN_WRITE[ext] = bool(cv2().haveImageWriter("x" + ext))
    return known
#: Default ``--max-pixels``: 2**27 (134 MP) accepts 48 MP photos with room to spare.
DEFAULT_MAX_PIXELS = 1 << 27
#: Inputs larger than this many bytes are refused before reading.
MAX_FILE_BYTES = 2 << 30
TEMP_PREFIX = ".stntool-tmp-"
#: Why an output was not written over an existing file.
OUTPUT_EXISTS = "output exists (use --overwrite or --skip-existing)"

_cv2 = None


def cv2():
    """Import OpenCV once, silencing its logging (libpng/libjpeg warnings must not reach the terminal)."""
    global _cv2
    if _cv2 is None:
        import cv2 as _m

        try:
            _m.utils.logging.setLogLevel(_m.utils.logging.LOG_LEVEL_SILENT)
        except AttributeError:  # pragma: no cover - older OpenCV
            if hasattr(_m, "setLogLevel"):
                _m.setLogLevel(0)
        _cv2 = _m
    return _cv2


def opencv_reason(text: str) -> str:
    """The reason in one of OpenCV's error messages (an exception's text, or its log's lines), on one line:
    ``OpenCV(5.1) file.cpp:100: error: (-2:Unspecified error) in function 'f' > Unsupported ... > where > ...``
    gives ``Unsupported ... where ...``; an assertion gives its check; other text is kept, spaces tidied."""
    import re

    m = re.search(r"error: \((-?\d+):([^)]*)\)(.*?)(?:in function '[^\n]*'|$)(.*)", text, re.S)
    if m:
        details = " ".join(ln.strip().lstrip(">").strip() for ln in m.group(4).splitlines() if ln.strip())
        text = details or m.group(3).strip() or m.group(2).strip()  # the reason, else the check, else its kind
    return " ".join(text.split())


def _decoder_reason(cv, data: bytes):
    """What OpenCV says when it cannot decode ``data`` (its log, silenced otherwise, read once more for this
    file), or None."""
    logging = getattr(getattr(cv, "utils", None), "logging", None)
    if logging is None:
        return None
    try:
        with STDERR_LOCK.capture(alone=True) as said:
            level = logging.getLogLevel()
            logging.setLogLevel(logging.LOG_LEVEL_ERROR)
            try:
                cv.imdecode(np.frombuffer(data, dtype=np.uint8), cv.IMREAD_UNCHANGED)
            finally:
                logging.setLogLevel(level)
    except Exception:  # noqa: BLE001 - the reason is a courtesy: never a new failure
        return None
    text = "\n".join(said)
    return opencv_reason(text) if "error: (" in text else None


class Said(list):
    """Lines a codec library wrote to fd 2 during one capture.

    ``unclear`` is True when other captures were open at the same time and something was written:
    the lines may be theirs (run again with ``capture(alone=True)`` to know).
    """

    unclear = False


class _Fd2Guard:
    """Keeps codec libraries' own messages off the terminal without ever swallowing stntool's.

    libpng, libjpeg, libtiff and libwebp write warnings and errors straight to file descriptor 2
    (``libpng error: Not enough image data``), below Python and OpenCV's log level. :meth:`capture`
    points fd 2 at a scratch file while a decoder (or encoder) runs and hands back what it wrote,
    so the message can become part of stntool's own line for that input.

    fd 2 belongs to the whole process, yet decoders in several threads may run at once: fd 2 stays
    on the scratch file while any capture is open, and each capture gets the bytes written during
    its own window. When captures overlapped and something was written meanwhile, the lines may
    be another decoder's: the capture says so (:attr:`Said.unclear`) and the caller runs again
    alone (``capture(alone=True)``), which :func:`decode_image` does. Clean images, the common
    case, decode in parallel.

    Python-level writes must not pass through fd 2 meanwhile: :meth:`python_stderr_kept` (used by
    the batch runner for the whole batch) points ``sys.stderr`` at a copy of fd 2 taken before any
    capture, so warnings, progress bars and ``print(..., file=sys.stderr)`` from any thread reach
    the real stderr and only C-level writes land in the scratch file. ``with STDERR_LOCK:`` waits
    until no capture is open and holds new ones back (for code that writes to fd 2 itself).

    While :meth:`python_stderr_kept` has ``sys.stderr`` on its copy, fd 2 stays on the scratch file
    between captures instead of being pointed back after each: a capture then costs two ``fstat``
    calls instead of eight system calls, each of which lets another thread take the GIL (in a batch
    of small images on two threads, the swaps took about 5% of the time). C-level lines written while
    no capture is open are copied to the real stderr when the next capture opens, when a writer takes
    the lock, and when the batch ends.
    """

    def __init__(self):
        self._lock = threading.RLock()
        self._idle = threading.Condition(self._lock)
        self._sink = None
        self._saved = None  # the real fd 2 while it points at the scratch file
        self._open = []  # one [alone] cell per open shared capture
        self._waiting = 0  # callers waiting for the real fd 2 (writers, captures that run alone)
        self._kept = None  # (writer, previous sys.stderr) while python_stderr_kept is active
        self._kept_depth = 0
        self._kept_lock = threading.Lock()
        self._held = False  # fd 2 stays on the scratch file between captures (see the class docstring)
        self._seen = 0  # the scratch file's bytes up to here were read (by a capture) or passed on

    def __enter__(self):
        self._lock.acquire()
        try:
            self._waiting += 1
            try:
                while self._open:
                    self._idle.wait()
            finally:
                self._waiting -= 1
            if self._saved is not None:  # held on the scratch file between captures: the real fd 2 again
                with sigint_deferred():
                    self._settle()
                    self._restore()
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, *exc):
        self._idle.notify_all()
        self._lock.release()

    # fd 2 <-> scratch file; called with the lock held and Ctrl-C held back

    def _redirect(self):
        try:
            if self._sink is None:
                self._sink = tempfile.TemporaryFile(prefix=TEMP_PREFIX)
            fd = self._sink.fileno()
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            self._seen = 0
            self._saved = os.dup(2)
            os.dup2(fd, 2)
            return True
        except OSError:  # no fd 2 (started with 2>&-) or no temp space: run without capture
            self._restore()
            return False
        except BaseException:
            self._restore()
            raise

    def _restore(self):
        saved, self._saved = self._saved, None
        if saved is not None:
            try:
                os.dup2(saved, 2)
            finally:
                os.close(saved)

    def _size(self) -> int:
        return os.fstat(self._sink.fileno()).st_size

    def _settle(self):
        """With fd 2 held on the scratch file and no capture open: copy what was written there since the
        last capture closed (C-level lines that were no decoder's) to the real fd 2. The file is not
        emptied while fd 2 points at it (a line written meanwhile would be lost); it is when fd 2 is
        pointed there again (:meth:`_redirect`)."""
        end = self._size()
        fd = self._sink.fileno()
        while self._seen < end:
            data = os.pread(fd, min(end - self._seen, 1 << 16), self._seen)
            if not data:
                break
            self._seen += len(data)
            try:
                while data:
                    data = data[os.write(self._saved, data):]
            except OSError:  # the real stderr is gone (closed pipe): nothing to tell
                pass

    def _lines(self, start: int, end: int) -> list:
        data = os.pread(self._sink.fileno(), min(end - start, 1 << 16), start)
        text = data.decode("utf-8", "replace")
        return [" ".join(line.split()) for line in text.splitlines() if line.strip()]

    @contextlib.contextmanager
    def capture(self, alone: bool = False):
        """Context manager yielding a :class:`Said` list that receives the lines written to fd 2 meanwhile.

        Captures in several threads may be open at once; ``alone`` waits until none is and keeps
        others out meanwhile, so what was written is this caller's. fd 2 is always pointed back (when the
        last capture closes, or while the batch runner holds it on the scratch file, when a writer takes
        the lock or the batch ends), even when Ctrl-C arrives during the swap (it is held back around it,
        and the restore runs whenever the copy of fd 2 was taken).
        """
        said = Said()
        if alone:
            with self:
                redirected = False
                try:  # a Ctrl-C held back during the swap is raised as the swap's block ends: inside this try
                    with sigint_deferred():
                        redirected = self._redirect()
                    yield said
                finally:
                    if redirected:
                        with sigint_deferred():
                            said.extend(self._lines(0, self._size()))
                            self._restore()
            return
        cell = None
        start = 0
        try:  # the cell is removed however the setup ends (a Ctrl-C held back in it is raised as it ends)
            with self._lock, sigint_deferred():
                while self._waiting:  # writers and lone captures first
                    self._idle.wait()
                if not self._open and self._saved is not None:
                    self._settle()  # held there since the last capture: others' lines go to the real fd 2
                if self._open or self._saved is not None or self._redirect():
                    cell = [not self._open]
                    for other in self._open:
                        other[0] = False
                    self._open.append(cell)
                    start = self._size() if len(self._open) > 1 else self._seen  # alone: all before was seen
            yield said
        finally:
            if cell is not None:
                with self._lock, sigint_deferred():
                    end = -1
                    try:
                        end = self._size()
                        if end > start:
                            said.extend(self._lines(start, end))
                            said.unclear = not cell[0]
                    finally:
                        self._open.remove(cell)
                        if not self._open:
                            if self._held:
                                self._seen = max(self._seen, end)
                            else:
                                self._restore()
                            self._idle.notify_all()

    @contextlib.contextmanager
    def python_stderr_kept(self):
        """While inside, ``sys.stderr`` writes to a copy of fd 2, so no capture can take Python's lines.

        Nested and concurrent uses share one copy; the last to leave gives ``sys.stderr`` back (unless
        someone replaced it meanwhile). Nothing changes when ``sys.stderr`` is not fd 2 (a test's
        capture, a file): such writes never reach a capture anyway.
        """
        with self._kept_lock:
            if self._kept_depth == 0:
                self._kept = self._keep()
                self._held = self._kept is not None
            self._kept_depth += 1
        try:
            yield
        finally:
            with self._kept_lock:
                self._kept_depth -= 1
                if self._kept_depth == 0 and self._held:
                    self._held = False
                    with self:  # fd 2 back from the scratch file, with what landed there meanwhile
                        pass
                if self._kept_depth == 0 and self._kept is not None:
                    writer, previous = self._kept
                    self._kept = None
                    with self._lock:  # no line of ours is half-written
                        try:
                            writer.flush()
                        except (OSError, ValueError):
                            pass
                        if sys.stderr is writer:
                            sys.stderr = previous
                        try:
                            writer.close()
                        except (OSError, ValueError):
                            pass

    def _keep(self):
        import io as _io

        current = sys.stderr
        try:
            if current is None or current.fileno() != 2:
                return None
            current.flush()
        except (AttributeError, OSError, ValueError, _io.UnsupportedOperation):
            return None
        fd = None
        with self, sigint_deferred():  # never copy fd 2 while it points at the scratch file
            try:
                fd = os.dup(2)
                if hasattr(os, "set_inheritable"):
                    os.set_inheritable(fd, False)
                writer = open(fd, "w", buffering=1, encoding=getattr(current, "encoding", None) or "utf-8",
                              errors=getattr(current, "errors", None) or "backslashreplace", closefd=True)
            except (OSError, ValueError):
                if fd is not None:
                    os.close(fd)
                return None
            sys.stderr = writer
        return writer, current


#: ``with STDERR_LOCK:`` around stntool's own fd-2 writes; ``STDERR_LOCK.capture()`` around codecs;
#: ``STDERR_LOCK.python_stderr_kept()`` around a batch (Python's stderr never captured).
STDERR_LOCK = _Fd2Guard()


def display(path) -> str:
    """A one-line printable form of a path (non-UTF-8 bytes and control characters escaped)."""
    if path == "-":
        return "<stdin>"
    if not os.fspath(path):  # an empty name (an empty shell variable) would leave "stntool: error: : ..."
        return "''"
    s = os.fsencode(path).decode("utf-8", "backslashreplace")  # a byte that is not UTF-8: \xff
    if not s.isprintable() and any(_breaks_line(ch) for ch in s):  # each escaped once: \n, \x1b, \x9b, \u2028
        s = "".join(_CONTROL_ESCAPES.get(ch) or (f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
                    if _breaks_line(ch) else ch for ch in s)
    return s


def _breaks_line(ch: str) -> bool:
    """Control characters (C0, DEL, C1: line breaks and terminal sequences), the line and paragraph separators,
    and format characters (bidi overrides that reorder the text around them, zero-width spaces) but the
    joiners that emoji and some scripts hold; spaces of every width print as file names hold them."""
    import unicodedata

    category = unicodedata.category(ch)
    return category in ("Cc", "Zl", "Zp") or (category == "Cf" and ch not in "\u200c\u200d")


_CONTROL_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


# --------------------------------------------------------------------------- reading

def _read_all(fd, size: int, max_bytes: int) -> bytes:
    """The bytes of the open file ``fd`` (``size`` as ``fstat`` gave it; more if it grew meanwhile), at most
    ``max_bytes + 1``, with plain ``read`` calls: a file object would ask ``fstat`` and ``isatty`` again, system
    calls that each let another thread take the GIL."""
    chunks = []
    total = 0
    want = min(size, max_bytes) + 1  # one byte more: the end of the file shows as a short read
    while total <= max_bytes:
        data = os.read(fd, want)
        if not data:
            break
        chunks.append(data)
        total += len(data)
        if len(data) < want and total >= size:  # a regular file's short read is its end: no read to learn that
            break
        want = min(max(want, 1 << 20), max_bytes + 1 - total)
        if want <= 0:
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class _FileSlices:
    """The bytes of an open file as the TIFF directory readers ask for them (``data[a:b]``, ``len(data)``), each
    slice read when asked: a page's size without reading the file."""

    def __init__(self, fd, size: int):
        self.fd, self.size = fd, size

    def __len__(self):
        return self.size

    def __getitem__(self, part):
        start, stop, _ = part.indices(self.size)
        return os.pread(self.fd, max(0, stop - start), start)


#: How much of a file :func:`read_file_bytes` reads first to check its header's size against ``max_pixels``.
HEAD_BYTES = 1 << 16


def read_file_bytes(path, max_bytes: int = MAX_FILE_BYTES, max_pixels: int | None = None) -> bytes:
    """Read a regular file's bytes; refuse pipes, devices, directories, dangling links and loops.

    ``stat`` is checked before opening, so a named pipe never blocks the reader. With ``max_pixels``, a file
    larger than :data:`HEAD_BYTES` whose header (in its first :data:`HEAD_BYTES`) declares more pixels is
    refused as :func:`decode_image` refuses it, before the rest is read (a refused 16-bit scan took its
    file's size in memory first); a TIFF's directory is read where it is.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise ImageReadError("dangling symbolic link") from None
        raise ImageReadError("no such file") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ImageReadError("symbolic link loop") from None
        raise ImageReadError(e.strerror or str(e)) from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError("not a regular file (pipe, socket or device)")
    if st.st_size == 0:
        raise ImageReadError("empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise ImageReadError(f"file too large ({st.st_size} bytes)")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise ImageReadError(e.strerror or str(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):  # replaced between stat and open
            raise ImageReadError("not a regular file")
        if max_pixels is not None and st.st_size > HEAD_BYTES:
            try:
                fmt, w, h = header_info(os.pread(fd, HEAD_BYTES, 0))
                if fmt == "tif" and (w is None or h is None):  # its directory past the head (libtiff writes it last)
                    w, h = _tiff_size(_FileSlices(fd, st.st_size))
            except Exception:  # noqa: BLE001 - a header cut short here is checked again once read whole
                w = h = None
            if w is not None and h is not None:
                _check_declared_size(w, h, max_pixels)
        return _read_all(fd, st.st_size, max_bytes)
    except OSError as e:
        raise ImageReadError(e.strerror or str(e)) from None
    finally:
        os.close(fd)


def sniff_format(data: bytes) -> str | None:
    """The container format from magic bytes: png, jpg, webp, tif, gif, bmp, hdr (Radiance), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tif"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"BM":
        return "bmp"
    if data[:10] == b"#?RADIANCE" or data[:6] == b"#?RGBE":
        return "hdr"
    return None


def _jpeg_segments(data: bytes):
    """Yield (marker, payload_offset, length) for JPEG header segments up to the first SOS."""
    i = 2
    n = len(data)
    while i + 4 <= n:
        if data[i] != 0xFF:
            return
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        yield marker, i + 4, length - 2
        if marker == 0xDA:
            return
        i += 2 + length


def _pnm_size(data: bytes):
    """``(width, height)`` from a PBM/PGM/PPM header (``P1``-``P6``: magic, then width and height as decimal
    numbers among whitespace and ``#`` comments) or a PAM header (``P7``: ``WIDTH`` and ``HEIGHT`` lines before
    ``ENDHDR``), read within the first :data:`HEAD_BYTES`, or ``(None, None)``."""
    end = min(len(data), HEAD_BYTES)
    if data[1:2] == b"7":
        found = {}
        for line in data[3:end].split(b"\n"):
            words = line.split()
            if words[:1] == [b"ENDHDR"]:
                break
            if len(words) == 2 and words[0] in (b"WIDTH", b"HEIGHT") and words[1].isdigit():
                found[words[0]] = int(words[1])
        return found.get(b"WIDTH"), found.get(b"HEIGHT")
    values = _pnm_numbers(data, 2)
    return (values[0], values[1]) if values else (None, None)


def _pnm_numbers(data: bytes, n: int):
    """The first ``n`` decimal numbers of a PBM/PGM/PPM header after its magic, among whitespace and ``#``
    comments, within the first :data:`HEAD_BYTES`; None where something else comes first or they run out."""
    values, i, end = [], 2, min(len(data), HEAD_BYTES)
    while len(values) < n and i < end:
        c = data[i:i + 1]
        if c == b"#":  # to the end of the line (a long comment does not hide the numbers)
            nl = [k for k in (data.find(b"\n", i, end), data.find(b"\r", i, end)) if k >= 0]
            i = min(nl) if nl else end
        elif c.isspace():
            i += 1
        elif c.isdigit():
            j = i
            while j < end and data[j:j + 1].isdigit():
                j += 1
            values.append(int(data[i:j]))
            i = j
        else:
            return None
    return values if len(values) == n else None


def pnm_maxval(data: bytes):
    """The ``maxval`` of a PGM or PPM header (``P2``, ``P3``, ``P5``, ``P6``: the third number), or None (other
    formats, bitmaps, PAM, a header that does not say)."""
    if not (data[:1] == b"P" and data[1:2] in (b"2", b"3", b"5", b"6") and data[2:3].isspace()):
        return None
    values = _pnm_numbers(data, 3)
    return values[2] if values else None


_HDR_RESOLUTION = re.compile(rb"([-+])([XY]) +(\d+) +([-+])([XY]) +(\d+)")


def _hdr_size(data: bytes):
    """``(width, height)`` from a Radiance HDR header (lines, an empty line, then the resolution line such as
    ``-Y 512 +X 768``: 512 scanlines of 768 pixels), within the first :data:`HEAD_BYTES`, or ``(None, None)``."""
    head = data[:HEAD_BYTES]
    blank = head.find(b"\n\n")
    if blank < 0:
        return None, None
    m = _HDR_RESOLUTION.match(head, blank + 2)
    if m is None or m.group(2) == m.group(5):
        return None, None
    first, second = int(m.group(3)), int(m.group(6))
    return (second, first) if m.group(2) == b"Y" else (first, second)


def header_info(data: bytes):
    """``(format, width, height)`` read from the header without decoding, or ``(format, None, None)``; PBM, PGM
    and PPM files, which :func:`sniff_format` leaves unnamed, are ``"pnm"`` here, PAM files ``"pam"``."""
    fmt = sniff_format(data)
    if fmt is None and data[:1] == b"P" and data[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6", b"7") \
            and data[2:3].isspace():
        return ("pam" if data[1:2] == b"7" else "pnm", *_pnm_size(data))
    if fmt == "hdr":
        return (fmt, *_hdr_size(data))
    try:
        if fmt == "png" and data[12:16] == b"IHDR":
            w, h = struct.unpack(">II", data[16:24])
            return fmt, w, h
        if fmt == "jpg":
            for marker, off, _ in _jpeg_segments(data):
                if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", data[off + 1:off + 5])
                    return fmt, w, h
        if fmt == "gif":
            w, h = struct.unpack("<HH", data[6:10])
            return fmt, w, h
        if fmt == "bmp":  # OS/2's 12-byte header holds 16-bit sizes; the others signed 32-bit ones
            core = struct.unpack("<I", data[14:18])[0] == 12
            w, h = struct.unpack("<HH", data[18:22]) if core else struct.unpack("<ii", data[18:26])
            return fmt, abs(w), abs(h)
        if fmt == "tif":
            return (fmt, *_tiff_size(data))
        if fmt == "webp":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = 1 + int.from_bytes(data[24:27], "little")
                h = 1 + int.from_bytes(data[27:30], "little")
                return fmt, w, h
            if chunk == b"VP8L":
                b = int.from_bytes(data[21:25], "little")
                return fmt, (b & 0x3FFF) + 1, ((b >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack("<HH", data[26:30])
                return fmt, w & 0x3FFF, h & 0x3FFF
    except struct.error:
        pass
    return fmt, None, None


def png_color_type(data: bytes):
    """The IHDR colour type of PNG bytes (0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 26:
        return data[25]
    return None


def _gif_frames(data: bytes) -> int:
    """Count image descriptors in a GIF by walking its blocks (no pixel decoding)."""
    n = 0
    i = 13
    if len(data) > 10 and data[10] & 0x80:  # global colour table
        i += 3 * (2 << (data[10] & 7))
    end = len(data)
    while i < end:
        b = data[i]
        if b == 0x3B:  # trailer
            break
        if b == 0x21:  # extension: label, then sub-blocks
            i += 2
        elif b == 0x2C:  # image descriptor, optional local colour table, LZW min code size, sub-blocks
            n += 1
            if i + 10 > end:
                break
            flags = data[i + 9]
            i += 10
            if flags & 0x80:
                i += 3 * (2 << (flags & 7))
            i += 1
        else:
            break
        while i < end and data[i] != 0:  # data sub-blocks
            i += data[i] + 1
        i += 1
    return max(n, 1)


def _tiff_ifd0(data: bytes) -> dict:
    """``{tag: (type, count, at)}`` of a classic or big TIFF's first page, ``at`` the offset of the entry's value
    field in ``data`` (where a value that fits is stored, left-justified); plus ``"endian"``. Empty when
    ``data`` is not TIFF; only ``"endian"`` (or the entries before the cut) when its directory is cut short."""
    endian = {b"II": "<", b"MM": ">"}.get(data[:2])
    if endian is None:
        return {}
    big = data[2:4] in (b"+\x00", b"\x00+")
    found = {"endian": endian}
    try:
        off = struct.unpack(endian + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
        count = struct.unpack(endian + ("Q" if big else "H"), data[off:off + (8 if big else 2)])[0]
        size, entry = (20, off + 8) if big else (12, off + 2)
        for k in range(min(count, 4096)):
            at = entry + k * size
            tag, kind = struct.unpack(endian + "HH", data[at:at + 4])
            n = struct.unpack(endian + ("Q" if big else "I"), data[at + 4:at + (12 if big else 8)])[0]
            if at + size <= len(data):
                found[tag] = (kind, n, at + (12 if big else 8))
    except struct.error:
        pass
    return found


#: TIFF integer field types whose single value sits in its directory entry: SHORT, LONG, LONG8 -> struct code.
_TIFF_INTS = {3: "H", 4: "I", 16: "Q"}


def _tiff_value(data: bytes, ifd: dict, tag: int):
    """The single SHORT, LONG or LONG8 value of ``tag`` stored in its entry, or None."""
    kind, n, at = ifd.get(tag, (0, 0, 0))
    if n != 1 or kind not in _TIFF_INTS:
        return None
    code = ifd["endian"] + _TIFF_INTS[kind]
    return struct.unpack(code, data[at:at + struct.calcsize(code)])[0]


def _tiff_size(data: bytes):
    """``(width, height)`` of a classic or big TIFF's first page (its ImageWidth and ImageLength tags), or
    ``(None, None)``."""
    ifd = _tiff_ifd0(data)
    return _tiff_value(data, ifd, 256), _tiff_value(data, ifd, 257)


#: TIFF tags rewritten before OpenCV decodes a page (:func:`_tiff_for_decoder`).
_TIFF_ORIENTATION, _TIFF_SAMPLES, _TIFF_PHOTOMETRIC, _TIFF_EXTRA_SAMPLES = 274, 277, 262, 338


def _tiff_for_decoder(data: bytes, apply_orientation: bool, ifd: dict | None = None) -> bytes:
    """TIFF bytes as OpenCV must see them to give the stored pixels, the way stntool reads every format.

    OpenCV's TIFF decoder (libtiff's RGBA reader) premultiplies 8-bit colour by an alpha marked unassociated
    (ExtraSamples 2, what most programs write), which stntool would take for straight colour: such pages are
    handed over with ExtraSamples 0 (unspecified, as OpenCV's own files), which it reads as stored. It also
    applies the Orientation tag itself, with or without ``IMREAD_IGNORE_ORIENTATION``: without
    ``apply_orientation`` the tag is handed over as 1. Grey + alpha pages, whose alpha the decoder drops,
    are refused (:class:`ImageReadError`). The input bytes are not changed; a patched copy is returned.
    ``ifd``: :func:`_tiff_ifd0` of ``data``, when the caller has it already.
    """
    ifd = _tiff_ifd0(data) if ifd is None else ifd
    if not ifd:
        return data
    if _tiff_value(data, ifd, _TIFF_SAMPLES) == 2 and _tiff_value(data, ifd, _TIFF_PHOTOMETRIC) in (0, 1):
        raise ImageReadError("grey + alpha TIFF: OpenCV's decoder drops its alpha channel; save it as PNG "
                             "(which keeps both) or without alpha")
    patches = []
    if _tiff_value(data, ifd, _TIFF_EXTRA_SAMPLES) == 2:
        patches.append((_TIFF_EXTRA_SAMPLES, 0))
    if not apply_orientation and _tiff_value(data, ifd, _TIFF_ORIENTATION) not in (None, 1):
        patches.append((_TIFF_ORIENTATION, 1))
    if not patches:
        return data
    out = bytearray(data)
    for tag, value in patches:
        kind, _, at = ifd[tag]
        code = ifd["endian"] + _TIFF_INTS[kind]
        out[at:at + struct.calcsize(code)] = struct.pack(code, value)
    return bytes(out)


def _tiff_associated_alpha(data: bytes, ifd: dict) -> bool:
    """Whether a TIFF's first page (``ifd``: its :func:`_tiff_ifd0`) marks its extra sample as associated alpha
    (ExtraSamples 1: colour stored premultiplied by alpha, as macOS writes it)."""
    return bool(ifd) and _tiff_value(data, ifd, _TIFF_EXTRA_SAMPLES) == 1


def _tiff_cmyk(data: bytes, ifd: dict) -> bool:
    """Whether a TIFF's first page is CMYK without extra samples (PhotometricInterpretation 5, four samples),
    which OpenCV's decoder converts to BGR and gives an opaque alpha channel."""
    return (bool(ifd) and _tiff_value(data, ifd, _TIFF_PHOTOMETRIC) == 5 and _tiff_value(data, ifd, _TIFF_SAMPLES) == 4
            and _TIFF_EXTRA_SAMPLES not in ifd)


#: Pixels per block of :func:`_straight_colour` (its float64 scratch stays at a few tens of MB).
_UNPREMULTIPLY_BLOCK = 1 << 20


def _straight_colour(img: np.ndarray) -> np.ndarray:
    """A premultiplied (associated-alpha) BGRA image with straight colour, as every other image is read:
    colour · max / alpha for integers, rounded half up and saturated (colour above its alpha, which a
    premultiplied image cannot hold, gives the maximum), colour / alpha for floats; colour under alpha 0 is 0.
    A new array; the input is not changed."""
    out = np.empty_like(img)
    flat_in = img.reshape(-1, 4)
    flat_out = out.reshape(-1, 4)
    top = float(np.iinfo(img.dtype).max) if img.dtype.kind in "ui" else None
    for k in range(0, flat_in.shape[0], _UNPREMULTIPLY_BLOCK):
        px = flat_in[k:k + _UNPREMULTIPLY_BLOCK]
        a = px[:, 3:4].astype(np.float64)
        c = px[:, :3].astype(np.float64)
        seen = a > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            if top is None:
                v = np.where(seen, c / np.where(seen, a, 1.0), 0.0)
            else:
                v = np.where(seen, np.floor(np.minimum(c, a) * top / np.where(seen, a, 1.0) + 0.5), 0.0)
        flat_out[k:k + _UNPREMULTIPLY_BLOCK, :3] = v
        flat_out[k:k + _UNPREMULTIPLY_BLOCK, 3] = px[:, 3]
    return out


def _tiff_pages(data: bytes) -> int:
    """Count the IFDs (pages) of a classic or big TIFF by following the next-IFD links."""
    endian = {b"II": "<", b"MM": ">"}.get(data[:2])
    if endian is None:
        return 1
    big = data[2:4] in (b"+\x00", b"\x00+")
    n, seen = 0, set()
    try:
        off = struct.unpack(endian + ("Q" if big else "I"), data[8:16] if big else data[4:8])[0]
        while off and off not in seen and off < len(data) and n < 100000:
            seen.add(off)
            n += 1
            if big:
                (count,) = struct.unpack(endian + "Q", data[off:off + 8])
                nxt = off + 8 + 20 * count
                (off,) = struct.unpack(endian + "Q", data[nxt:nxt + 8])
            else:
                (count,) = struct.unpack(endian + "H", data[off:off + 2])
                nxt = off + 2 + 12 * count
                (off,) = struct.unpack(endian + "I", data[nxt:nxt + 4])
    except struct.error:
        pass
    return max(n, 1)


def _png_chunks(data: bytes):
    """``(kind, payload)`` of each chunk of PNG bytes, in order, up to and including IEND (a chunk cut short gives
    what is there; :func:`_check_complete` refuses such files before they are decoded). Payloads are memoryviews
    of ``data``: a reader that stops at the image data copies none of it."""
    view = memoryview(data)
    i = 8
    while i + 8 <= len(data):
        length, kind = struct.unpack(">I4s", view[i:i + 8])
        yield kind, view[i + 8:i + 8 + length]
        if kind == b"IEND":
            return
        i += 12 + length


def frame_count(data: bytes, fmt: str | None = None) -> int:
    """How many frames or pages an image file holds (APNG, GIF, animated WebP, multi-page TIFF).

    Read from the container without decoding pixels; 1 for still images and unknown layouts.
    """
    fmt = fmt or sniff_format(data)
    try:
        if fmt == "png":
            for kind, payload in _png_chunks(data):
                if kind == b"acTL":
                    return max(1, struct.unpack(">I", payload[:4])[0])
                if kind in (b"IDAT", b"IEND"):
                    return 1
        elif fmt == "gif":
            return _gif_frames(data)
        elif fmt == "tif":
            return _tiff_pages(data)
        elif fmt == "webp" and data[12:16] == b"VP8X" and data[20] & 0x02:  # animation flag
            n, i = 0, 12
            while i + 8 <= len(data):
                kind = data[i:i + 4]
                (size,) = struct.unpack("<I", data[i + 4:i + 8])
                n += kind == b"ANMF"
                i += 8 + size + (size & 1)
            return max(n, 1)
    except (struct.error, IndexError):
        pass
    return 1


#: A marker after (or between) a scan's entropy-coded bytes, where ``FF 00`` is a stuffed byte, ``FF D0-D7`` a
#: restart marker and ``FF FF`` fill.
_JPEG_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_ends(data: bytes) -> bool:
    """Whether the JPEG image in ``data`` reaches its end-of-image marker: its header segments, each scan's
    entropy-coded bytes up to the next marker, the segments between scans (progressive JPEGs), then EOI.
    Bytes after the EOI are not the image's: a phone's video or depth map appended to the photo may hold an
    ``FF DA`` after the image's last ``FF D9`` (the quick test of :func:`_check_complete`)."""
    scan = None
    for marker, off, length in _jpeg_segments(data):
        if marker == 0xDA:
            scan = off + length
    while scan is not None:
        m = _JPEG_MARKER.search(data, scan)
        if m is None or data[m.start() + 1] == 0xD9:
            return m is not None
        j = m.start()
        if j + 4 > len(data):
            return False
        (length,) = struct.unpack(">H", data[j + 2:j + 4])
        scan = j + 2 + length  # past a segment between scans (after an SOS: into the next scan's data)
    return False


def _png_grey_key(data: bytes):
    """The level a gray PNG's ``tRNS`` chunk makes transparent, at the depth OpenCV decodes it to (1, 2 and 4-bit
    levels scaled to 8 bits), or None (not gray, or no ``tRNS`` before the image data)."""
    if png_color_type(data) != 0 or len(data) < 25:
        return None
    depth = data[24]
    for kind, payload in _png_chunks(data):
        if kind == b"tRNS" and len(payload) >= 2 and depth in (1, 2, 4, 8, 16):
            level = struct.unpack(">H", payload[:2])[0] & ((1 << depth) - 1)
            return level * (255 // ((1 << depth) - 1)) if depth < 8 else level
        if kind in (b"IDAT", b"IEND"):
            return None
    return None


def _check_complete(fmt: str, data: bytes):
    """Refuse truncated files that decoders would silently fill with grey."""
    if fmt == "jpg":
        eoi = data.rfind(b"\xff\xd9")
        sos = data.rfind(b"\xff\xda")
        if (sos < 0 or eoi < sos) and not _jpeg_ends(data):
            raise ImageReadError("truncated JPEG (no end-of-image marker after the scan data)")
    elif fmt == "png":
        if data.rfind(b"IEND") < 0:
            raise ImageReadError("truncated PNG (no IEND chunk)")
        # Every chunk up to IEND must be present and its CRC must match.
        i = 8
        while i + 8 <= len(data):
            length, kind = struct.unpack(">I4s", data[i:i + 8])
            end = i + 12 + length
            if end > len(data):
                raise ImageReadError(f"truncated PNG (chunk {kind.decode('latin-1')!r} cut short)")
            if zlib.crc32(data[i + 4:i + 8 + length]) != struct.unpack(">I", data[i + 8 + length:end])[0]:
                raise ImageReadError(f"corrupt PNG (bad CRC in chunk {kind.decode('latin-1')!r})")
            if kind == b"IEND":
                return
            i = end
        raise ImageReadError("truncated PNG (no IEND chunk)")


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation tag (1-8) of a JPEG, or 1 when absent or unreadable."""
    try:
        for marker, off, length in _jpeg_segments(data):
            if marker == 0xE1 and data[off:off + 6] == b"Exif\x00\x00":
                t = data[off + 6:off + length]
                endian = {b"II": "<", b"MM": ">"}.get(t[:2])
                if endian is None:
                    return 1
                (ifd,) = struct.unpack(endian + "I", t[4:8])
                (count,) = struct.unpack(endian + "H", t[ifd:ifd + 2])
                for k in range(count):
                    e = ifd + 2 + 12 * k
                    tag, typ = struct.unpack(endian + "HH", t[e:e + 4])
                    if tag == 0x0112 and typ == 3:
                        (v,) = struct.unpack(endian + "H", t[e + 8:e + 10])
                        return v if 1 <= v <= 8 else 1
                return 1
    except struct.error:
        pass
    return 1


def file_orientation(path) -> int:
    """The orientation tag (1-8) a JPEG's EXIF or a TIFF's first page gives the file at ``path``, read from its
    head (a TIFF's directory where it is); 1 when it has none or cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return 1
    try:
        size = os.fstat(fd).st_size
        head = os.pread(fd, 16 * HEAD_BYTES, 0)  # a JPEG's EXIF may follow large XMP or ICC segments
        fmt = sniff_format(head)
        if fmt == "jpg":
            return exif_orientation(head)
        if fmt == "tif":
            data = _FileSlices(fd, size)
            v = _tiff_value(data, _tiff_ifd0(data), _TIFF_ORIENTATION)
            return v if v is not None and 1 <= v <= 8 else 1
    except (OSError, struct.error):
        pass
    finally:
        os.close(fd)
    return 1


def apply_orientation(img: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip pixels so that EXIF ``orientation`` becomes 1 (upright)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a, -1)[::-1],  # transverse: out[i, j] = a[H - 1 - j, W - 1 - i]
        8: lambda a: np.rot90(a, 1),
    }
    if orientation in ops:
        return np.ascontiguousarray(ops[orientation](img))
    return img


def _check_declared_size(w: int, h: int, max_pixels: int):
    if w * h > max_pixels:
        raise ImageReadError(f"image too large: header declares {w}x{h} = {w * h} pixels "
                             f"(limit {max_pixels}, see --max-pixels)")


def _decode_flag(cv, fmt, data) -> int:
    """OpenCV's ``imdecode`` flag for ``data``: ``IMREAD_UNCHANGED`` (depth and channels as stored), except for
    an OS/2 bitmap (a 12-byte header), which OpenCV reads as grey unchanged: colour unless its pixels are 8 bits
    or fewer, indices into a palette of greys only."""
    if fmt != "bmp" or data[14:18] != b"\x0c\0\0\0" or len(data) < 26:
        return cv.IMREAD_UNCHANGED
    bpp = struct.unpack("<H", data[24:26])[0]
    if bpp <= 8:
        start = min(struct.unpack("<I", data[10:14])[0], len(data))
        palette = np.frombuffer(data[26:start][: 3 * (1 << bpp)], np.uint8)
        palette = palette[: palette.size // 3 * 3].reshape(-1, 3)
        if palette.size and np.all(palette == palette[:, :1]):
            return cv.IMREAD_GRAYSCALE
    return cv.IMREAD_COLOR


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, apply_exif: bool = True,
                 warnings: list | None = None, grey_transparency: bool = True) -> np.ndarray:
    """Decode image bytes keeping depth and channels (uint8/uint16/float32; gray, gray+alpha, BGR, BGRA).

    The size is checked against ``max_pixels`` from the header before anything is decoded.
    Raises :class:`ImageReadError` for empty, truncated, corrupt, unknown or oversized data; what
    the codec library said (it writes to fd 2, which is captured meanwhile) ends the message.
    When the image decodes but the library complained (``Corrupt JPEG data: ...``), its lines are
    appended to ``warnings`` if a list is given, and dropped otherwise. While decoders run, the
    process's fd 2 points at a scratch file (several threads may decode at once; see
    ``STDERR_LOCK``). :func:`stntool.batch.run_batch`
    keeps ``sys.stderr`` off fd 2 for the whole batch; library callers that decode in threads
    while other threads write to stderr can do the same with
    ``with STDERR_LOCK.python_stderr_kept():`` (code writing to fd 2 itself: ``with STDERR_LOCK:``).
    A gray PNG's ``tRNS`` level becomes an alpha channel unless ``grey_transparency`` is False (a mask of
    class ids: one channel, the level a class like any other).
    """
    if not data:
        raise ImageReadError("empty file (0 bytes)")
    fmt, w, h = header_info(data)
    if w is not None and h is not None:
        if w == 0 or h == 0:
            raise ImageReadError(f"header declares an empty image ({w}x{h})")
        _check_declared_size(w, h, max_pixels)
    if fmt in ("jpg", "png"):
        _check_complete(fmt, data)
    associated = cmyk = False
    if fmt == "tif":
        ifd = _tiff_ifd0(data)  # read once: for the alpha's kind and for the patches
        associated = _tiff_associated_alpha(data, ifd)
        cmyk = _tiff_cmyk(data, ifd)
        data = _tiff_for_decoder(data, apply_exif, ifd)
    cv = cv2()
    said = []
    for alone in (False, True):  # decoders run side by side; again alone when their lines are mixed
        try:
            with STDERR_LOCK.capture(alone=alone) as said:
                img = cv.imdecode(np.frombuffer(data, dtype=np.uint8), _decode_flag(cv, fmt, data))
        except cv.error as e:
            msg = str(e).strip().splitlines()[-1] if str(e).strip() else "decoder error"
            raise ImageReadError(f"cannot decode image ({msg})") from None
        if not said.unclear:
            break
    if img is None:
        if fmt is None:
            raise ImageReadError("not an image (unrecognised data)")
        reason = said[-1] if said else _decoder_reason(cv, data)
        why = f"; {reason}" if reason else ""
        raise ImageReadError(f"cannot decode {fmt.upper()} data (corrupt or unsupported{why})")
    if said and warnings is not None:
        warnings.extend(said)
    if img.size == 0:
        raise ImageReadError("decoded an empty image")
    if img.shape[0] * img.shape[1] > max_pixels:
        raise ImageReadError(f"image too large: {img.shape[1]}x{img.shape[0]} pixels (limit {max_pixels})")
    if img.dtype == np.int8 or img.dtype == np.int16 or img.dtype == np.int32:
        raise ImageReadError(f"{sample_words(img.dtype)} samples are not supported (unsigned 8- and 16-bit, and "
                             "float images are)")
    if img.dtype == np.float16:
        img = img.astype(np.float32)
    if associated and img.ndim == 3 and img.shape[2] == 4:
        img = _straight_colour(img)
    if cmyk and img.ndim == 3 and img.shape[2] == 4:  # the decoder's BGR plus an alpha of its own, always opaque
        img = np.ascontiguousarray(img[..., :3])
    if fmt == "png" and png_color_type(data) == 4 and img.ndim == 3 and img.shape[2] == 4:
        img = np.ascontiguousarray(img[..., [0, 3]])  # gray+alpha: OpenCV expands to BGRA; keep 2 channels
    key = _png_grey_key(data) if fmt == "png" and img.ndim == 2 and grey_transparency else None
    if key is not None:  # gray with a transparent level: OpenCV drops its tRNS chunk; gray+alpha, as type 4
        alpha = np.where(img == key, 0, np.iinfo(img.dtype).max).astype(img.dtype)
        img = np.ascontiguousarray(np.stack([img, alpha], axis=2))
    if apply_exif and fmt == "jpg":
        img = apply_orientation(img, exif_orientation(data))
    return img


def read_image(path, max_pixels: int = DEFAULT_MAX_PIXELS, apply_exif: bool = True):
    """Read and decode an image file: returns ``(image, format)``."""
    data = read_file_bytes(path, max_pixels=max_pixels)
    return decode_image(data, max_pixels, apply_exif), sniff_format(data)


# --------------------------------------------------------------------------- writing

def _write_instead(fmt: str) -> str:
    """How to write ``fmt`` instead: a folder's outputs take ``--format``, a file output its own extension."""
    return f"write {fmt} instead (--format {fmt}, or an output file named .{fmt})"


def sample_words(dtype) -> str:
    """A sample type as a user knows it: ``"16-bit"`` (uint16), ``"32-bit float"``, ``"32-bit signed integer"``."""
    dt = np.dtype(dtype)
    bits = 8 * dt.itemsize
    if dt.kind == "u":
        return f"{bits}-bit" if bits <= 16 else f"{bits}-bit unsigned integer"
    if dt.kind == "f":
        return f"{bits}-bit float" if bits <= 64 else "extended-precision float"
    if dt.kind == "i":
        return f"{bits}-bit signed integer"
    return {"b": "true/false", "c": "complex"}.get(dt.kind, f"{dt.name}")


def encode_image(img: np.ndarray, fmt: str, quality: int | None = None, icc: bytes | None = None) -> bytes:
    """Encode to ``fmt`` (a format name or an extension such as ``.png``), refusing lossy depth/channel changes.
    ``icc``: an ICC colour profile to embed (JPEG, PNG and WebP; where it describes the image's channels,
    :func:`icc_fits`)."""
    blob = _encode(img, fmt, quality)
    channels = 1 if img.ndim == 2 else img.shape[2]
    if icc is not None and icc_fits(icc, channels):
        blob = with_icc(blob, fmt, icc, channels)
    return blob


def _encode(img: np.ndarray, fmt: str, quality: int | None = None) -> bytes:
    cv = cv2()
    ext = FORMAT_EXTENSIONS.get(fmt.lower().lstrip("."), None)
    if ext is None:
        ext = "." + fmt.lower().lstrip(".")
        why = unwritable(ext)
        if why is not None:
            raise InvalidArgumentError(f"cannot write {fmt!r} files" + (f" ({why})" if ext in WRITABLE_EXTENSIONS
                                                                        else ""))
    fmt = ext.lstrip(".")
    c = 1 if img.ndim == 2 else img.shape[2]
    depth = img.dtype
    if ext in (".jpg", ".jpeg", ".jpe", ".webp", ".bmp"):
        if depth != np.uint8:
            fits = "png" if depth == np.uint16 else "tif"  # png holds 8 and 16 bits only
            raise ImageWriteError(f"{fmt} cannot store {sample_words(depth)} samples without loss; "
                                  f"{_write_instead(fits)}")
        if ext in (".jpg", ".jpeg", ".jpe") and c in (2, 4):
            raise ImageWriteError(f"jpg cannot store an alpha channel; {_write_instead('png')}")
    if ext == ".hdr" and (depth != np.float32 or c != 3):  # Radiance RGBE: three float channels, nothing else
        what = f"{sample_words(depth)} samples" if depth != np.float32 else f"{c} channel{'s' if c > 1 else ''}"
        raise ImageWriteError(f"hdr stores three 32-bit float channels, not {what}; {_write_instead('tif')}")
    if ext in (".png", ".ppm", ".pgm", ".pnm") and depth not in (np.uint8, np.uint16):  # OpenCV writes 8 bits
        raise ImageWriteError(f"{fmt} cannot store {sample_words(depth)} samples; {_write_instead('tif')}")
    stores = {".pgm": ((1,), "one grey channel"), ".ppm": ((3,), "three colour channels"),
              ".pnm": ((1, 3), "one grey or three colour channels")}.get(ext)
    if stores is not None and c not in stores[0]:  # (a PAM's alpha is not written by OpenCV)
        raise ImageWriteError(f"{fmt} stores {stores[1]}, not {c} channel{'s' if c > 1 else ''}; "
                              f"{_write_instead('png')}")
    if c == 2:
        if ext == ".png":
            return encode_png_gray_alpha(img, quality)
        # other formats have no gray+alpha layout in OpenCV: store the same pixels as BGRA
        img = np.ascontiguousarray(img[..., [0, 0, 0, 1]])
    params = []
    if quality is not None:
        if ext in (".jpg", ".jpeg", ".jpe"):
            params = [cv.IMWRITE_JPEG_QUALITY, int(quality)]
        elif ext == ".webp":
            params = [cv.IMWRITE_WEBP_QUALITY, int(quality)]
        elif ext == ".png":
            # 0-100 mapped to zlib level 9-0 (higher quality = faster, bigger; PNG is always lossless).
            params = [cv.IMWRITE_PNG_COMPRESSION, max(0, min(9, 9 - int(quality) // 11))]
    said = []
    try:
        with STDERR_LOCK.capture() as said:  # the codec library's own fd-2 lines, as for decoding
            ok, buf = cv.imencode(ext, img, params)
    except cv.error as e:
        raise ImageWriteError(f"cannot encode {fmt}: {str(e).strip().splitlines()[-1]}") from None
    if not ok:
        clear = said and not getattr(said, "unclear", False)
        raise ImageWriteError(f"cannot encode {fmt}" + (f" (encoder said: {said[-1]})" if clear else ""))
    return buf.tobytes()


#: The most bytes of ICC profile carried from an input to its outputs (profiles are a few KB; a large one
#: is a few MB). A PNG's compressed profile is inflated up to this much, never more.
MAX_ICC_BYTES = 1 << 24
#: The largest profile a PNG output carries: what Pillow reads by default (its MAX_TEXT_CHUNK), where libpng's
#: own limit on a chunk is 8 MB; larger profiles (rare: most are a few KB) are left out of PNG outputs.
MAX_PNG_ICC_BYTES = 1 << 20
_ICC_SPACES = {b"GRAY": (1, 2), b"RGB ": (3, 4)}  # an ICC profile's colour space -> channel counts it describes


def icc_profile(data: bytes) -> bytes | None:
    """The ICC colour profile embedded in encoded JPEG, PNG, WebP or TIFF bytes, or None (none, another format,
    or one that cannot be read: a profile is never a reason to fail an image). A JPEG's profile is the join of
    its ``ICC_PROFILE`` APP2 chunks in their sequence order; a PNG's is its ``iCCP`` chunk, inflated."""
    try:
        fmt = sniff_format(data)
        if fmt == "jpg":
            parts = {}
            for marker, at, length in _jpeg_segments(data):
                if marker == 0xE2 and data[at:at + 12] == b"ICC_PROFILE\x00" and length >= 14:
                    parts[data[at + 12]] = data[at + 14:at + length]
            return b"".join(parts[k] for k in sorted(parts)) or None if parts else None
        if fmt == "png":
            for kind, payload in _png_chunks(data):
                if kind == b"iCCP":
                    payload = bytes(payload)
                    z = zlib.decompressobj()
                    profile = z.decompress(payload[payload.index(b"\x00") + 2:], MAX_ICC_BYTES)
                    return profile if profile and not z.unconsumed_tail else None
                if kind in (b"IDAT", b"IEND"):
                    return None
            return None
        if fmt == "webp":
            i = 12
            while i + 8 <= len(data):
                kind, length = data[i:i + 4], struct.unpack("<I", data[i + 4:i + 8])[0]
                if kind == b"ICCP":
                    return bytes(data[i + 8:i + 8 + length]) or None
                i += 8 + length + (length & 1)
            return None
        if fmt == "tif":
            ifd = _tiff_ifd0(data)
            kind, n, at = ifd.get(34675, (0, 0, 0))  # InterColorProfile, UNDEFINED bytes
            if kind not in (1, 7) or not 0 < n <= MAX_ICC_BYTES:
                return None
            big = data[2:4] in (b"+\x00", b"\x00+")
            if n > (8 if big else 4):
                at = struct.unpack(ifd["endian"] + ("Q" if big else "I"), data[at:at + (8 if big else 4)])[0]
            profile = bytes(data[at:at + n])
            return profile if len(profile) == n else None
    except (ValueError, IndexError, KeyError, struct.error, zlib.error):
        return None
    return None


def icc_fits(profile: bytes | None, channels: int) -> bool:
    """Whether an ICC profile describes images of ``channels`` channels (its colour space: ``GRAY`` for grey and
    grey+alpha, ``RGB`` for colour with or without alpha); a CMYK JPEG's profile, for one, does not describe the
    BGR pixels it decodes to."""
    return profile is not None and len(profile) >= 128 and channels in _ICC_SPACES.get(bytes(profile[16:20]), ())


def with_icc(blob: bytes, fmt: str, profile: bytes, channels: int = 3) -> bytes:
    """Encoded JPEG, PNG or WebP bytes ``blob`` (as :func:`encode_image` makes them, of an image of ``channels``
    channels) with the ICC ``profile`` embedded; other formats unchanged. JPEG: ``ICC_PROFILE`` APP2 segments
    after the JFIF header; PNG: an ``iCCP`` chunk after ``IHDR``; WebP: an ``ICCP`` chunk after a ``VP8X``
    header (made for a simple file), for colour images only (WebP stores grey as RGB, which a grey profile
    does not describe)."""
    ext = FORMAT_EXTENSIONS.get(fmt.lower().lstrip("."), "." + fmt.lower().lstrip("."))
    profile = bytes(profile)
    if ext in (".jpg", ".jpeg", ".jpe"):
        size = 65519  # a segment's payload: 2 + 14 + this = 65535 bytes
        chunks = [profile[k:k + size] for k in range(0, len(profile), size)]
        if len(chunks) > 255:
            return blob
        app2 = b"".join(b"\xff\xe2" + struct.pack(">H", 16 + len(c)) + b"ICC_PROFILE\x00" + bytes((k + 1, len(chunks)))
                        + c for k, c in enumerate(chunks))
        at = 2
        if blob[2:4] == b"\xff\xe0":  # after the JFIF APP0 segment
            at = 4 + struct.unpack(">H", blob[4:6])[0]
        return blob[:at] + app2 + blob[at:]
    if ext == ".png":
        if len(profile) > MAX_PNG_ICC_BYTES:
            return blob
        at = 8 + 12 + struct.unpack(">I", blob[8:12])[0]  # after IHDR
        return blob[:at] + _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(profile)) + blob[at:]
    if ext == ".webp" and channels >= 3:
        body = blob[12:]
        iccp = b"ICCP" + struct.pack("<I", len(profile)) + profile + (b"\x00" if len(profile) & 1 else b"")
        if body[:4] == b"VP8X":
            flags = body[8] | 0x20
            body = body[:8] + bytes((flags,)) + body[9:18] + iccp + body[18:]
        else:
            w, h, alpha = _webp_simple_size(body)
            vp8x = b"VP8X" + struct.pack("<I", 10) + bytes((0x20 | (0x10 if alpha else 0), 0, 0, 0)) + \
                (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
            body = vp8x + iccp + body
        return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body
    return blob


def _webp_simple_size(body: bytes):
    """``(width, height, alpha)`` of a simple WebP's one image chunk (``VP8`` lossy or ``VP8L`` lossless)."""
    if body[:4] == b"VP8L":  # signature 0x2f, then 14 bits width - 1, 14 bits height - 1, 1 bit alpha
        bits = int.from_bytes(body[9:13], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool(bits >> 28 & 1)
    if body[:4] == b"VP8 ":  # frame tag (3 bytes), start code (3), then 14-bit width and height
        w, h = struct.unpack("<HH", body[8 + 6:8 + 10])
        return w & 0x3FFF, h & 0x3FFF, False
    raise ValueError("not a simple WebP")


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def _png_bytes(rows: np.ndarray, width: int, depth: int, color_type: int, quality: int | None, chunks=()) -> bytes:
    """A PNG of ``rows`` (``(H, bytes per row)`` uint8, unfiltered) with ``chunks`` (``(kind, payload)``) before
    its data."""
    h = rows.shape[0]
    raw = np.empty((h, rows.shape[1] + 1), np.uint8)
    raw[:, 0] = 0  # filter type None for every row
    raw[:, 1:] = rows
    level = 6 if quality is None else max(0, min(9, 9 - int(quality) // 11))
    ihdr = struct.pack(">IIBBBBB", width, h, depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + b"".join(_png_chunk(k, v) for k, v in chunks)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), level)) + _png_chunk(b"IEND", b""))


def encode_png_gray_alpha(img: np.ndarray, quality: int | None = None) -> bytes:
    """A gray+alpha PNG (colour type 4, 8 or 16 bit) from an (H, W, 2) array; OpenCV cannot write one."""
    h, w = img.shape[:2]
    depth = 16 if img.dtype == np.uint16 else 8
    rows = np.ascontiguousarray(img.astype(">u2") if depth == 16 else img).reshape(h, -1).view(np.uint8)
    return _png_bytes(rows, w, depth, 4, quality)


def png_palette(data: bytes):
    """``(PLTE, tRNS or None)`` chunk payloads of an indexed (palette) PNG, or None for any other data."""
    if png_color_type(data) != 3:
        return None
    plte = trns = None
    for kind, payload in _png_chunks(data):
        if kind == b"PLTE":
            plte = bytes(payload)
        elif kind == b"tRNS":
            trns = bytes(payload)
        elif kind in (b"IDAT", b"IEND"):
            break
    if plte is None or not 3 <= len(plte) <= 768 or len(plte) % 3:
        raise ImageReadError("indexed PNG without a valid palette (PLTE)")
    return plte, trns


def _png_rows(data: bytes):
    """``(width, height, bit depth, interlace, filtered bytes)`` of a PNG: its IDAT data inflated."""
    w, h, depth = struct.unpack(">IIB", data[16:25])
    try:
        return w, h, depth, data[28], zlib.decompress(b"".join(p for kind, p in _png_chunks(data) if kind == b"IDAT"))
    except zlib.error as e:
        raise ImageReadError(f"corrupt PNG data ({e})") from None


def _unfilter(raw: np.ndarray, h: int, stride: int) -> np.ndarray:
    """PNG rows ``(h, stride)`` from their filtered bytes (one filter byte, then the row; a byte per pixel or
    less, so the byte to the left is the previous one)."""
    rows = raw.reshape(h, stride + 1)
    out = np.zeros((h, stride), np.uint8)
    prev = np.zeros(stride, np.uint8)
    for y in range(h):
        kind, cur = int(rows[y, 0]), rows[y, 1:]
        if kind == 0:
            line = cur.copy()
        elif kind == 1:
            line = np.cumsum(cur, dtype=np.uint8)
        elif kind == 2:
            line = cur + prev
        elif kind in (3, 4):  # average, Paeth: each byte depends on the one just decoded
            line, a = cur.astype(np.int64), 0
            up = prev.astype(np.int64)
            for x in range(stride):
                b = int(up[x])
                c = int(up[x - 1]) if x else 0
                if kind == 3:
                    pred = (a + b) >> 1
                else:
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                a = line[x] = (int(line[x]) + pred) & 255
            line = line.astype(np.uint8)
        else:
            raise ImageReadError(f"corrupt PNG data (row filter {kind})")
        out[y] = prev = line
    return out


def decode_indexed_png(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple:
    """``(indices (H, W) uint8, (PLTE, tRNS or None))`` of an indexed PNG: the palette's index at each pixel,
    not its colour (a segmentation mask in a palette, as Pascal VOC ships them; OpenCV decodes such a file
    to colours). The indices are checked against OpenCV's colours: :class:`ImageReadError` when they differ."""
    palette = png_palette(data)
    if palette is None:
        raise ImageReadError("not an indexed (palette) PNG")
    if len(data) > 28 and data[28]:
        raise ImageReadError("an interlaced indexed PNG cannot be read as indices (save it without interlacing)")
    img = decode_image(data, max_pixels, apply_exif=False)  # checks size and completeness, and the colours
    w, h, depth, _, raw = _png_rows(data)
    if depth not in (1, 2, 4, 8):
        raise ImageReadError(f"indexed PNG of bit depth {depth}")
    stride = (w * depth + 7) // 8
    if len(raw) != h * (stride + 1):
        raise ImageReadError("corrupt PNG data (image data of the wrong size)")
    rows = _unfilter(np.frombuffer(raw, np.uint8), h, stride)
    if depth < 8:
        per = 8 // depth
        shifts = (8 - depth - depth * np.arange(per)).astype(np.uint8)
        rows = ((rows[:, :, None] >> shifts) & ((1 << depth) - 1)).reshape(h, stride * per)
    ids = np.ascontiguousarray(rows[:, :w])
    rgb = np.frombuffer(palette[0], np.uint8).reshape(-1, 3)
    if int(ids.max()) >= len(rgb) or not np.array_equal(rgb[ids][..., ::-1], img.reshape(h, w, -1)[..., :3]):
        raise ImageReadError("indexed PNG whose indices do not give its colours (corrupt data)")
    return ids, palette


def encode_indexed_png(indices: np.ndarray, palette, quality: int | None = None) -> bytes:
    """An 8-bit indexed PNG of ``indices`` ((H, W) uint8) with ``palette`` (``(PLTE, tRNS or None)``, as
    :func:`png_palette` gives)."""
    plte, trns = palette
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise ImageWriteError(f"an indexed PNG holds (H, W) uint8 indices, got {indices.dtype} {indices.shape}")
    if indices.size and int(indices.max()) >= len(plte) // 3:
        raise ImageWriteError(f"index {int(indices.max())} is beyond the palette's {len(plte) // 3} colours")
    chunks = [(b"PLTE", plte)] + ([(b"tRNS", trns)] if trns else [])
    return _png_bytes(np.ascontiguousarray(indices), indices.shape[1], 8, 3, quality, chunks)


def _write_all(fd, data: bytes):
    """``data`` written to the open file ``fd`` with plain ``write`` calls (a file object would ask ``fstat``
    and ``isatty`` first)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_stdout(data: bytes):
    """``data`` on stdout, all of it or an error: a buffered write to a pipe whose reader left partway returns
    the bytes the pipe took and raises nothing (``BrokenPipeError`` comes from the next plain write)."""
    out = sys.stdout.buffer
    out.flush()
    try:
        fd = out.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a descriptor (a test's capture)
        fd = None
    if fd is not None:
        _write_all(fd, data)
        return
    view = memoryview(data)
    while view:
        n = out.write(view)
        if not n:
            raise BrokenPipeError(errno.EPIPE, "stdout took no more bytes")
        view = view[n:]
    out.flush()


def file_in_the_way(path) -> str | None:
    """Why ``path``'s folder cannot be made, or None: the nearest of its folders that exists is a file
    (``x.png/out``); the message names it."""
    folder = nearest_folder(path)
    return None if os.path.isdir(folder) else _in_the_way(folder)


def _in_the_way(folder) -> str:
    return f"{display(folder)} is a file, not a folder"


def nearest_folder(path) -> str:
    """The nearest of ``path``'s folders that exists (``.`` at the end of a relative path): where its folders would be
    created. It may be a file in the way (:func:`file_in_the_way`)."""
    folder = os.path.dirname(os.fspath(path)) or os.curdir
    while not os.path.exists(folder):
        folder = os.path.dirname(folder) or os.curdir
    return folder


def folder_problem(path) -> str | None:
    """Why a file cannot be made at ``path`` in its folder, or None: a file in the way of the folder (``x.png/out``),
    or a folder (the nearest existing one) where no file can be created (read-only, ``/proc``): tried with a
    temporary file, removed at once. A missing folder is no problem (it is created when the file is written)."""
    import tempfile

    folder = nearest_folder(path)
    if not os.path.isdir(folder):
        return _in_the_way(folder)
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".stntool-tmp-", suffix=".part"):
            pass
    except OSError as e:
        return f"cannot create a file in {display(folder)}: {e.strerror or e}"
    return None


def write_atomic(path, data: bytes, overwrite: bool = False):
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    A reader (or an interrupted run) sees either no file or the complete file. With
    ``overwrite=False`` an existing target is refused (checked again just before the rename); with
    ``overwrite=True`` only a regular file (or a link to one) is replaced, and the new file gets its
    permissions.
    """
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except FileExistsError:
            raise ImageWriteError(f"cannot create folder {display(folder)}: a file of that name is in the way") \
                from None
        except OSError as e:  # the folder it could not make (the first missing one), not the deepest
            raise ImageWriteError(f"cannot create folder {display(e.filename or folder)}: {e.strerror or e}") \
                from None
    if not overwrite and _write_unnamed(folder, path, data):  # refuses an existing target itself
        return
    mode = 0o666 & ~_umask()  # a new file's permissions, as open() would give it
    if overwrite:  # --overwrite replaces files, never a pipe, a device or a folder someone left at the name
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise ImageWriteError("output exists and is not a regular file (a pipe, device or folder): not replaced")
        if st is not None and _uid() in (None, st.st_uid):  # another user's file becomes ours: the usual permissions
            mode = st.st_mode & 0o777  # the file replaced keeps its permissions (a read-only one stays so)
    if not overwrite and os.path.lexists(path):
        raise ImageWriteError(OUTPUT_EXISTS)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".part", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        if not overwrite:
            try:
                os.link(tmp, path)  # fails atomically if the target appeared meanwhile
            except FileExistsError:
                raise ImageWriteError(OUTPUT_EXISTS) from None
            except OSError:
                os.replace(tmp, path)  # file systems without hard links
                tmp = None
                return
            os.unlink(tmp)
            tmp = None
        else:
            os.replace(tmp, path)
            tmp = None
    except OSError as e:
        raise ImageWriteError(f"cannot write: {e.strerror or e}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


#: Where unnamed files (``O_TMPFILE``) can be linked in: True until a file system or platform says no.
_UNNAMED = [hasattr(os, "O_TMPFILE") and sys.platform.startswith("linux") and os.link in os.supports_dir_fd]
_ROOT_FD = []


def _write_unnamed(folder, path, data: bytes) -> bool:
    """Write ``data`` to a new file ``path`` through an unnamed file in ``folder`` (``O_TMPFILE``), given its
    name only once complete (a link, which refuses an existing target): no temporary name ever appears,
    even if the process is killed, and it takes two file-system operations instead of four. Returns False
    (nothing written) where the platform or the folder's file system cannot do it; the caller then writes
    through a named temporary file. Raises :class:`ImageWriteError` like :func:`write_atomic`."""
    if not _UNNAMED[0]:
        return False
    try:
        fd = os.open(folder, os.O_TMPFILE | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o666)  # umask applies
    except OSError as e:
        if e.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS):
            return False  # this file system has no unnamed files
        raise ImageWriteError(f"cannot write: {e.strerror or e}") from None
    try:
        try:
            _write_all(fd, data)
        except OSError as e:
            raise ImageWriteError(f"cannot write: {e.strerror or e}") from None
        if not _ROOT_FD:
            _ROOT_FD.append(os.open("/", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)))
        try:  # linkat(..., AT_SYMLINK_FOLLOW) on the descriptor's /proc entry names the file
            os.link(f"/proc/self/fd/{fd}", path, src_dir_fd=_ROOT_FD[0], follow_symlinks=True)
        except FileExistsError:
            raise ImageWriteError(OUTPUT_EXISTS) from None
        except OSError as e:
            if e.errno == errno.ENOENT and not os.path.isdir(folder):  # the folder went meanwhile: this file fails
                raise ImageWriteError(f"cannot write: {e.strerror or e}") from None
            if e.errno in (errno.ENOENT, errno.EXDEV, errno.EPERM, errno.EACCES, errno.ENOSYS, errno.EINVAL):
                _UNNAMED[0] = False  # no /proc, or links refused here: named temporary files from now on
                return False
            raise ImageWriteError(f"cannot write: {e.strerror or e}") from None
    finally:
        os.close(fd)  # an unnamed file that was not linked disappears with its descriptor
    return True


_UMASK = None


def _uid():
    """This process's user id; None where the platform has none (Windows: files have no owner to compare)."""
    return os.getuid() if hasattr(os, "getuid") else None


def _umask() -> int:
    global _UMASK
    if _UMASK is None:
        m = os.umask(0)
        os.umask(m)
        _UMASK = m
    return _UMASK


# --------------------------------------------------------------------------- discovery

def is_image_name(name) -> bool:
    return os.path.splitext(os.fsdecode(name))[1].lower() in IMAGE_EXTENSIONS


def scan_directory(root, recursive: bool = False, skip=(), unreadable=None):
    """Yield ``(path, relative_path)`` of image files under ``root`` in sorted order.

    Hidden files and folders (names that start with ``.``) are left out, as a shell's ``*`` leaves them out:
    macOS's ``._photo.jpg`` (resource forks, not images), ``.ipynb_checkpoints`` copies, stntool's own temporary
    files. Directories (even ones named like images) are only entered with ``recursive``; directory
    symlinks are followed once (loops are cut by remembering visited folders). Sub-folders whose
    ``(st_dev, st_ino)`` is in ``skip`` are not entered. A folder that cannot be listed (no permission)
    is reported to ``unreadable(path, relative_path, reason)`` at its place in the order, when given.
    """
    seen = set()

    def walk(folder, rel):
        key = folder_key(folder)
        if key is None or key in seen or (rel and key in skip):  # the root is scanned whatever ``skip`` holds
            return
        seen.add(key)
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as e:
            if unreadable is not None:
                unreadable(folder, rel, e.strerror or type(e).__name__)
            return
        for e in entries:
            if e.name.startswith("."):  # hidden (TEMP_PREFIX among them)
                continue
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                if recursive:
                    yield from walk(e.path, os.path.join(rel, e.name) if rel else e.name)
            elif is_image_name(e.name):
                yield e.path, (os.path.join(rel, e.name) if rel else e.name)

    yield from walk(root, "")


def folder_key(path):
    """``(st_dev, st_ino)`` of the folder (or file) at ``path``, following links; None when it cannot be read."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


# --------------------------------------------------------------------------- JSONL

def to_jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(type(value).__name__)


def json_line(record: dict) -> str:
    """One JSON object on one line (non-UTF-8 path bytes survive as escaped surrogates)."""
    return json.dumps(record, default=to_jsonable, ensure_ascii=True, allow_nan=False)


def read_jsonl(path, cut=None, numbers=None):
    """Records of a JSONL file (``-`` for stdin); raises InvalidArgumentError naming the bad line.

    A byte-order mark before the first line is read past; blank lines are skipped. ``cut``, a list: a last line
    that is not JSON and has no newline (a run stopped while writing it) is left out, its number appended to
    ``cut``, instead of refused. ``numbers``, a list: each record's line number in the file is appended to it
    (for messages about a record's contents)."""
    import sys

    f = sys.stdin if path == "-" else open(path, encoding="utf-8", errors="surrogateescape")
    records = []
    try:
        for no, raw in enumerate(f, 1):
            line = (raw.lstrip("\ufeff") if no == 1 else raw).strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except ValueError as e:
                if cut is not None and not raw.endswith("\n") and not f.read(1):
                    cut.append(no)
                    break
                raise InvalidArgumentError(f"{display(path)} line {no}: not JSON ({e})") from None
            except RecursionError:
                raise InvalidArgumentError(f"{display(path)} line {no}: not JSON (nested too deeply)") from None
            if not isinstance(rec, dict):
                raise InvalidArgumentError(f"{display(path)} line {no}: expected a JSON object")
            records.append(rec)
            if numbers is not None:
                numbers.append(no)
    finally:
        if f is not sys.stdin:
            f.close()
    return records
