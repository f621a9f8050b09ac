"""Compile a batch's missing kernels in a second process, so a first run uses two cores.

Numba compiles one kernel signature at a time, on one core, under a process-wide lock: a first run
of ``stntool warp`` over 8-bit, 16-bit and RGBA images compiles its three signatures one after
another while the second core idles. When a batch starts, :func:`start`

1. predicts the working dtype of the first inputs from their file headers, and whether they have one
   channel (:func:`working_kind`: at most :data:`HEADER_FILES` files or :data:`HEADER_SECONDS`
   seconds), in input order;
2. asks the kernel cache which (kernel, signature) pairs the batch will need and does not have
   (:func:`is_cached`; :func:`signature`: the dtype, and one channel for the kernels that take
   one-channel images apart);
3. when at least two are missing, keeps the first half (rounded up, in the order the inputs need
   them) for this process and starts ONE second process (a fresh interpreter, never a fork) that
   compiles the rest through :mod:`stntool.warmup` (the public API on small arrays, so exactly the
   signatures the batch loads), reporting each as it finishes (:class:`Background`). It runs at
   :data:`NICE`: on a busy box the batch keeps the CPU, and the second process catches up while
   the batch waits for it.

When this process then misses one of those signatures in the cache, the cache
(:data:`stntool.sampling._kernel_cache.pending`) waits for the second process and loads its result;
if that process failed or died, it stops waiting and compiles the kernel itself. Waiting counts as
compile time (:func:`stntool._compile_notice.count_wait`). The wait happens inside numba's
compile, under its process-wide compiler lock: another batch thread that needs a kernel compiled
meanwhile waits too (it would have waited for this thread's own compile just the same). A wrong
prediction only costs background work: kernels and outputs are the same either way. At the end of the batch
:meth:`Background.close` stops the process if it still runs (it finishes a cache write first; the
cache's files are written atomically and under a lock, see :mod:`stntool.sampling._kernel_cache`);
the process also ends by itself when this one ends.

Not used (nothing changes) when ``STNTOOL_COMPILE_AHEAD=0``, with a backend other than ``cpu``,
under ``NUMBA_DISABLE_JIT``, with one CPU or one numba thread, or where ``fcntl`` is missing
(Windows). Only the header of each file is read here; nothing is decoded.
"""

from __future__ import annotations

import io as _io
import json
import math
import os
import stat
import struct
import subprocess
import sys
import threading
import time

#: Environment variable: ``0`` (or ``no``, ``off``, ``false``) turns compiling ahead off.
ENV = "STNTOOL_COMPILE_AHEAD"
#: At most this many input headers are read to predict the dtypes of a batch...
HEADER_FILES = 64
#: ... and for at most this many seconds.
HEADER_SECONDS = 0.05
#: The second process runs this much nicer: it uses an idle core in full, but a busy box's CPU goes to
#: the batch first (while the batch waits for it, it has a core to itself).
NICE = 10
#: The longest this process waits for one signature from the second process before compiling it itself.
WAIT_LIMIT = 600.0

_PNG = b"\x89PNG\r\n\x1a\n"
#: Kernel families whose one-channel images are signatures of their own (``stntool.sampling._cpu.GREY``).
CHANNEL_FAMILIES = ("projective", "grid", "tps")
#: The channel counts the second process compiles a claim's kernel for: one for a one-channel signature
#: (:func:`signature`), three for others (colour images of any count share one signature).
GREY_CHANNELS, COLOUR_CHANNELS = (1,), (3,)


def enabled(backend: str) -> bool:
    """The checks that need no numba: the switch, the backend, the CPU count, ``fcntl``, ``NUMBA_DISABLE_JIT``."""
    from .sampling import _kernel_cache

    if os.environ.get(ENV, "1").strip().lower() in ("0", "no", "off", "false"):
        return False
    if backend != "cpu" or (os.cpu_count() or 1) < 2 or _kernel_cache.fcntl is None:
        return False
    return os.environ.get("NUMBA_DISABLE_JIT", "0").strip() in ("", "0")


# --------------------------------------------------------------------------- predicting dtypes

def working_kind(f) -> tuple:
    """``(dtype, grey, unmixed)``: the dtype a file's image is warped in (:func:`working_dtype`, or None),
    whether it decodes to one channel (PNG colour type 0 without a ``tRNS`` chunk; a JPEG whose frame has
    one component), which the projective, grid and TPS kernels take as signatures of their own
    (:data:`CHANNEL_FAMILIES`), and the dtype of warps that mix no pixels (nearest), which do not
    premultiply alpha: an alpha PNG's own (``"uint8"``, ``"uint16"``), else ``dtype``. ``f``: a binary file
    at its start."""
    dtype = working_dtype(f)
    if dtype is None:
        return None, False, None
    f.seek(0)
    head = f.read(26)
    if head[:8] == _PNG:
        unmixed = ("uint16" if head[24] == 16 else "uint8") if dtype == "float32" else dtype
        return dtype, head[25] == 0 and dtype != "float32", unmixed
    return dtype, _jpeg_components(f) == 1, dtype


def working_dtype(f) -> str | None:
    """The dtype a file's image is warped in, from its header (``f``: a binary file at its start), or None.

    What :func:`stntool.io.decode_image` and :func:`stntool.records.apply_spec` do with it:

    * PNG: ``"float32"`` with alpha (colour types 4 and 6, or a grey, RGB or palette image with a
      ``tRNS`` chunk: the decoder gives it an alpha channel, and images with alpha are warped
      premultiplied in float32), else ``"uint16"`` for 16-bit and ``"uint8"`` for 1- to 8-bit
      samples;
    * JPEG: ``"uint8"``;
    * anything else (TIFF, WebP, BMP, EXR, ...): None, not predicted.
    """
    head = f.read(33)
    if head[:3] == b"\xff\xd8\xff":
        return "uint8"
    if head[:8] != _PNG or head[12:16] != b"IHDR" or len(head) < 26:
        return None
    depth, colour = head[24], head[25]
    if colour in (4, 6):
        return "float32"
    if colour not in (0, 2, 3) or depth not in (1, 2, 4, 8, 16):
        return None
    if colour in (0, 2, 3):  # a tRNS chunk (before the image data) adds alpha
        pos = 33
        for _ in range(256):
            f.seek(pos)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            length, kind = struct.unpack(">I4s", chunk)
            if kind == b"tRNS":
                return "float32"
            if kind in (b"IDAT", b"IEND"):
                break
            pos += 12 + length
        else:
            return None
    return "uint16" if depth == 16 else "uint8"


#: JPEG start-of-frame markers (``0xC0`` to ``0xCF`` but DHT, JPG and DAC), whose segment names the
#: frame's component count.
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_components(f, markers: int = 64):
    """The component count of a JPEG's frame (``f`` a binary file), walking at most ``markers`` segments from
    the start of image; None when the frame header is not found."""
    f.seek(2)
    for _ in range(markers):
        head = f.read(4)
        if len(head) < 4 or head[0] != 0xFF:
            return None
        if head[1] == 0xFF:  # a fill byte before the marker
            f.seek(-3, 1)
            continue
        if head[1] == 0x01 or 0xD0 <= head[1] <= 0xD7:  # TEM and RSTn have no length
            f.seek(-2, 1)
            continue
        marker, length = head[1], struct.unpack(">H", head[2:4])[0]
        if marker in _SOF:
            frame = f.read(6)  # precision, height, width, components
            return frame[5] if len(frame) == 6 else None
        if marker in (0xD9, 0xDA) or length < 2:  # end of image, start of scan: no frame header before
            return None
        f.seek(length - 2, 1)
    return None


def _file_kind(path) -> tuple:
    """:func:`working_kind` of a regular file; pipes, devices and folders are not opened for reading
    (a named pipe would block), and give ``(None, False)``."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None, False, None
        with os.fdopen(fd, "rb", closefd=False) as f:
            return working_kind(f)
    finally:
        os.close(fd)


def predict(items, stdin_bytes=None, skip_existing: bool = False, files: int = HEADER_FILES,
            seconds: float = HEADER_SECONDS) -> list:
    """``[(item, dtype, grey, unmixed)]`` for the first ``files`` inputs read within ``seconds`` whose dtype
    :func:`working_kind` predicts (inputs with a planning error, unreadable ones and, with
    ``skip_existing``, those whose outputs all exist are left out)."""
    found = []
    deadline = time.perf_counter() + seconds
    for n, item in enumerate(items):
        if n >= files or time.perf_counter() > deadline:
            break
        if getattr(item, "error", None):
            continue
        if skip_existing and item.outputs and all(p != "-" and os.path.lexists(p) for p in item.outputs):
            continue
        try:
            if item.input == "-":
                dtype, grey, unmixed = working_kind(_io.BytesIO(stdin_bytes or b""))
            else:
                dtype, grey, unmixed = _file_kind(item.input)
        except OSError:
            continue
        if dtype is not None:
            found.append((item, dtype, grey, unmixed))
    return found


# --------------------------------------------------------------------------- asking the cache

def entry(family: str, mode: str, padding: str = "zeros"):
    """The CPU entry kernel (a numba dispatcher) of a family, mode and padding (imports numba; border and
    reflection padding have entries of their own); ``"backward"`` is the sampler's backward pass
    (bilinear, float64)."""
    from .sampling import MODES, PADDINGS, _cpu

    if family == "backward":
        return _cpu._grid_sample_backward_parts

    return _cpu.entry(family, MODES[mode], PADDINGS[padding])


def is_cached(dispatcher, dtype: str) -> bool:
    """True when ``dispatcher`` has the signature ``dtype`` names (:func:`signature`: ``"uint8"``,
    ``"uint8 grey"``; :func:`stntool.sampling._kernel_cache.claim_key`), compiled in this process or
    in its on-disk cache for this numba, CPU and source (reads the cache index: numba's private API;
    anything unexpected counts as cached, so nothing is compiled ahead)."""
    from .sampling._kernel_cache import claim_key, folder_lock

    try:
        if any(claim_key(sig) == dtype for sig in list(dispatcher.overloads)):
            return True
        cache = dispatcher._cache
        _, magic, code = cache._index_key((), dispatcher.targetctx.codegen())
        with folder_lock(cache.cache_path, exclusive=False):
            index = cache._cache_file._load_index()
        return any(k[1] == magic and k[2] == code and claim_key(k[0]) == dtype for k in index)
    except Exception:  # noqa: BLE001 - a question about the cache must never break a run
        return True


def signature(dtype: str, grey: bool, family: str) -> str:
    """The name of a kernel signature a claim stands for: the image dtype, plus ``" grey"`` for one-channel
    images of the :data:`CHANNEL_FAMILIES` (:func:`stntool.sampling._kernel_cache.claim_key`)."""
    return dtype + " grey" if grey and family in CHANNEL_FAMILIES else dtype


def needed(predicted, kernels) -> list:
    """``[(family, mode, padding, signature)]`` in the order the inputs need them, once per (family, mode,
    signature): :func:`signature` names the dtype and, where it matters, one channel.

    ``predicted`` is :func:`predict`'s list (nearest kernels take an image in its ``unmixed`` dtype: an alpha
    image is not premultiplied in float32 for them); ``kernels(item)`` gives the ``(family, mode, padding)``
    of the kernels that item's image runs through, or ``(family, mode, padding, dtype)`` for a kernel
    that runs on arrays of a fixed dtype whatever the image's (``dtype`` None: the image's), colour ones
    unless a fifth value says one channel (``(family, mode, padding, dtype, True)``)."""
    from .sampling import OWN_KERNEL_PADDINGS

    seen, out = set(), []
    for item, predicted_dtype, predicted_grey, unmixed in predicted:
        for family, mode, padding, *fixed in kernels(item) or ():
            own = bool(fixed) and fixed[0] is not None
            dtype = fixed[0] if own else (unmixed if mode == "nearest" else predicted_dtype)
            grey = (len(fixed) > 1 and bool(fixed[1])) if own else predicted_grey
            dtype = signature(dtype, grey, family)
            key = (family, mode, padding in OWN_KERNEL_PADDINGS, dtype)  # (border, reflection: kernels apart)
            if key not in seen:
                seen.add(key)
                out.append((family, mode, padding, dtype))
    return out


# --------------------------------------------------------------------------- the second process

class Background:
    """The second compiling process: which (kernel, dtype) it claimed, and what it finished.

    Built by :meth:`launch` (or, in tests, around any process whose stdout speaks the same lines:
    ``done I`` / ``failed I`` for claim ``I``). :meth:`wait` is the cache's
    :data:`~stntool.sampling._kernel_cache.pending` hook.
    """

    def __init__(self, proc, claims, where=None):
        self.proc = proc
        self.claims = dict(claims)  # (kernel name, dtype) -> index of the task that compiles it
        self.where = where
        self.results = {}  # index -> True (compiled) / False (failed)
        self.gone = False
        self._buffer = b""
        self._lock = threading.Lock()

    @classmethod
    def launch(cls, todo, backend: str = "cpu"):
        """Start the process for ``todo`` (``[(family, mode, padding, dtype)]``)."""
        import stntool

        from . import _runtime

        payload = json.dumps({"tasks": [list(t) for t in todo], "backend": backend, "cli": _runtime.cli_process})
        root = os.path.dirname(os.path.dirname(os.path.abspath(stntool.__file__)))
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                "from stntool._compile_ahead import _child_main; _child_main()")
        proc = subprocess.Popen([sys.executable, "-c", code, payload], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, close_fds=True)
        claims = {(entry(f, m, p).py_func.__name__, d): i for i, (f, m, p, d) in enumerate(todo)}
        return cls(proc, claims)

    def _read(self, timeout: float) -> bool:
        """Read what the process said within ``timeout`` seconds; False once it has ended (end of file)."""
        import select

        fd = self.proc.stdout.fileno()
        ready, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        data = os.read(fd, 4096)
        if not data:
            self.gone = True
            return False
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            word, _, index = line.decode("ascii", "replace").partition(" ")
            if word in ("done", "failed") and index.strip().isdigit():
                self.results[int(index)] = word == "done"
        return True

    def wait(self, name: str, dtype: str | None) -> bool:
        """True once the process has compiled ``(name, dtype)``; False at once when it did not claim it,
        and as soon as it fails or ends without it (or after :data:`WAIT_LIMIT`): compile it here then."""
        index = self.claims.get((name, dtype))
        if index is None:
            return False
        from . import _compile_notice

        started = time.perf_counter()
        with self._lock:
            while index not in self.results and not self.gone:
                left = WAIT_LIMIT - (time.perf_counter() - started)
                if left <= 0:
                    break
                self._read(min(left, 1.0))
            ok = self.results.get(index, False)
        _compile_notice.count_wait(f"{dtype} {name}", time.perf_counter() - started, self.where)
        return ok

    def close(self, timeout: float = 2.0):
        """Stop the process if it still runs (it finishes a cache write first) and wait for it to end."""
        from .sampling import _kernel_cache

        if _kernel_cache.pending == self.wait:
            _kernel_cache.pending = None
        proc = self.proc
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()  # closing its stdin tells it to stop
            except OSError:
                pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _child_main():
    """The second process: compile the tasks given in ``argv[1]``, report ``done I`` / ``failed I`` on stdout.

    Says nothing else (stdout is moved off fd 1, stderr is /dev/null). Ends when its stdin closes
    (the parent is done or gone), after any cache write in progress."""
    payload = json.loads(sys.argv[1])
    try:
        os.nice(NICE)
    except (AttributeError, OSError):
        pass
    report = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    from . import _runtime
    from .sampling import _kernel_cache

    _runtime.cli_process = bool(payload.get("cli"))

    def stop_when_parent_done():
        try:
            sys.stdin.buffer.read()
        except (OSError, ValueError):
            pass
        with _kernel_cache.SAVING:  # never in the middle of writing the cache
            os._exit(0)

    threading.Thread(target=stop_when_parent_done, daemon=True).start()
    from . import warmup

    for i, (family, mode, padding, sig) in enumerate(payload["tasks"]):
        dtype, _, grey = sig.partition(" ")
        try:
            warmup.run_task(warmup.Task(family, dtype, mode, (padding,)), payload.get("backend", "cpu"),
                            channels=GREY_CHANNELS if grey else COLOUR_CHANNELS)
            word = "done"
        except Exception:  # noqa: BLE001 - the parent compiles it itself
            word = "failed"
        try:
            report.write(f"{word} {i}\n")
            report.flush()
        except OSError:
            break
    with _kernel_cache.SAVING:
        os._exit(0)


def start(items, kernels, backend: str, stdin_bytes=None, skip_existing: bool = False):
    """Start compiling ahead for a batch, or return None (nothing to do, or not possible here).

    ``items`` are the batch's planned :class:`stntool.batch.Item` objects, ``kernels(item)`` the
    ``(family, mode, padding)`` of the CPU kernels each image runs through (``"affine"``,
    ``"projective"``, ``"grid"`` or ``"tps"``; an empty list when unknown). Returns the running
    :class:`Background` (call its :meth:`~Background.close` when the batch ends); its signatures are
    announced through :mod:`stntool._compile_notice`.
    """
    if not enabled(backend):
        return None
    try:
        wanted = needed(predict(items, stdin_bytes, skip_existing), kernels)
        if len(wanted) < 2:
            return None
        import numba

        if numba.config.NUMBA_NUM_THREADS < 2 or numba.config.DISABLE_JIT:
            return None
        missing = [w for w in wanted if not is_cached(entry(w[0], w[1], w[2]), w[3])]
        if len(missing) < 2:
            return None
        todo = missing[math.ceil(len(missing) / 2):]
        background = Background.launch(todo, backend)
    except Exception:  # noqa: BLE001 - compiling ahead is an optimisation: without it, compile here
        return None
    from . import _compile_notice
    from .sampling import _kernel_cache

    background.where = _compile_notice.cache_dir(entry(todo[0][0], todo[0][1], todo[0][2]))
    _kernel_cache.pending = background.wait
    for family, mode, padding, dtype in todo:
        _compile_notice.announce_elsewhere(f"{dtype} {_compile_notice.kernel_name(entry(family, mode, padding))}",
                                           background.where)
    return background
