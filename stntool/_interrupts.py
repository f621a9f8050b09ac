"""Holding Ctrl-C back for a few statements: a module of its own, with nothing heavier than the signal
module to import, so that loading a kernel (:mod:`stntool.sampling._kernel_cache`) does not import
:mod:`stntool.io`."""

from __future__ import annotations

import contextlib
import threading

# The signal module's C core: the same handlers, without the enum wrapping that ``signal.signal`` and
# ``signal.getsignal`` add to every call (about 20 us of each swap and restore, which the batch runner
# does around every record it reports).
try:
    import _signal as _signals
except ImportError:  # pragma: no cover - other Python implementations
    import signal as _signals
_SIGINT = int(_signals.SIGINT)
_SIGTERM = getattr(_signals, "SIGTERM", None)
#: Set once a SIGTERM has been taken as a Ctrl-C (:func:`sigterm_as_sigint`): the command line then exits 143.
terminated = False


@contextlib.contextmanager
def sigint_deferred():
    """Hold Ctrl-C back for a few statements (swapping fd 2, writing a record and counting it).

    In the main thread (the only one where ``KeyboardInterrupt`` is raised) SIGINT's handler is
    swapped for one that only notes the signal; the previous handler runs when the block ends, so
    a Ctrl-C is never lost, only delayed. Elsewhere, or when signals cannot be handled, a no-op.
    """
    got = []
    old = _swap_sigint(lambda signum, frame: got.append(frame))
    try:
        yield
    finally:
        if old is not None:
            _signals.signal(_SIGINT, old)
            if got and callable(old):
                old(_SIGINT, got[0])  # Python's default handler raises KeyboardInterrupt here


def ignore_sigint():
    """Let Ctrl-C go unanswered from now on (a batch that is stopping already); returns the function that puts
    the handler before back, or None where nothing was changed (as :func:`sigint_deferred`, only in the main
    thread and for a handler set from Python)."""
    old = _swap_sigint(lambda signum, frame: None)
    if old is None:
        return None

    def restore():
        try:
            _signals.signal(_SIGINT, old)
        except (ValueError, OSError, TypeError):
            pass

    return restore


def _swap_sigint(handler):
    """Make ``handler`` SIGINT's, in the main thread (the only one where Python handles signals); returns the
    handler before it, or None where nothing was swapped (another thread, a handler not set from Python)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        if _signals.getsignal(_SIGINT) is None:  # a handler not set from Python: left alone
            return None
        return _signals.signal(_SIGINT, handler)
    except (ValueError, OSError, TypeError):
        return None


def sigterm_as_sigint():
    """Take SIGTERM (``kill``, ``timeout``, a scheduler or ``docker stop`` ending the run) as a Ctrl-C: it runs
    whatever SIGINT's handler is at that moment, so a batch winds down as it does for Ctrl-C (running images
    finish their atomic writes, every file written gets its record, temp files go) where SIGTERM's default
    would end the process between a file and its record. Sets :data:`terminated`. Only in the main thread,
    only when SIGTERM has its default handler (one set by whoever started the process is kept), and only when
    Ctrl-C would wind the run down (SIGINT has Python's handler: a job a script starts with ``&`` ignores
    SIGINT, and SIGTERM then ends it at once, as before)."""
    if _SIGTERM is None or threading.current_thread() is not threading.main_thread():
        return
    try:
        if _signals.getsignal(_SIGTERM) != _signals.SIG_DFL:
            return
        if _signals.getsignal(_SIGINT) is not _signals.default_int_handler:
            return
        _signals.signal(_SIGTERM, _on_sigterm)
    except (ValueError, OSError, TypeError, AttributeError):
        pass


def _on_sigterm(signum, frame):
    global terminated
    terminated = True
    handler = _signals.getsignal(_SIGINT)
    if callable(handler):
        handler(_SIGINT, frame)  # Python's default raises KeyboardInterrupt; the batch's note or ignore it
    else:  # SIGINT's handler changed since (not by stntool, whose are functions): a SIGTERM is never lost
        raise KeyboardInterrupt
