"""Command line interface (commands are added in their own modules)."""

from __future__ import annotations

import click

from ._version import __version__
from .commands.augment import augment
from .commands.rectify import rectify
from .commands.train import train
from .commands.warmup import warmup
from .commands.warp import warp


class _Group(click.Group):
    """The command group; Ctrl-C outside a batch (which reports it itself) ends the run with status 130, as a
    shell expects of SIGINT, with one line instead of Click's "Aborted!" and status 1."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            _say_interrupted()
            raise click.exceptions.Exit(130) from None


def _say_interrupted():
    """``stntool: interrupted`` on stderr, importing nothing: Ctrl-C may have stopped an import half-way (NumPy's
    cannot be imported again in this process)."""
    import contextlib
    import sys

    io = sys.modules.get(__package__ + ".io")
    lock = getattr(io, "STDERR_LOCK", None)  # not while a decoder's own stderr output is being captured
    try:
        with lock if lock is not None else contextlib.nullcontext():
            sys.stderr.write("stntool: interrupted\n")
            sys.stderr.flush()
    except (OSError, ValueError):
        pass


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="stntool")
def cli():
    """Spatial-transformer warps for image folders, with PyTorch's θ convention."""


cli.add_command(warp)
cli.add_command(augment)
cli.add_command(train)
cli.add_command(rectify)
cli.add_command(warmup)


def _open_closed_std_streams():
    """Give standard descriptors that the caller closed (a shell's ``>&-``, ``<&-``) ``/dev/null``.

    Python leaves ``sys.stdout`` (``stdin``, ``stderr``) None for a closed descriptor, so every write and flush
    of it was a traceback; and the next file opened would take its number, so a line meant for stdout could
    land in an output image."""
    import os
    import sys

    from . import _runtime

    for fd, name, flags in ((0, "stdin", os.O_RDONLY), (1, "stdout", os.O_WRONLY), (2, "stderr", os.O_WRONLY)):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        _runtime.closed_streams = _runtime.closed_streams | {name}
        null = os.open(os.devnull, flags)  # the lowest free number: ``fd`` itself, as 0-2 are opened in order
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        setattr(sys, name, open(fd, "r" if flags == os.O_RDONLY else "w", closefd=False))


def main():
    """Entry point of the ``stntool`` script and ``python -m stntool``.

    After a command that loaded numba, the process ends with ``os._exit`` once everything that a
    normal exit would finish is finished: other non-daemon threads are joined, ``atexit`` handlers
    run (logging's flush, anything a command registered), stdout and stderr are flushed. What is
    skipped is only the interpreter's teardown of modules and objects (LLVM, numba's thread pool,
    thousands of module objects: about 0.2 s per run). Commands close their own files before
    returning (the batch runner closes its manifest); a file a command leaves open would not be
    flushed by a garbage-collection finalizer. tests/unit/test_shutdown.py holds this to account.
    """
    import sys

    _open_closed_std_streams()
    # numba probes scipy's BLAS when it first loads a kernel (about 0.2 s); stntool's kernels use no
    # linear algebra, and this process runs nothing but stntool, so keep scipy out of it (safe while
    # no stntool code imports scipy and no jitted function uses np.linalg: see test_shutdown.py).
    sys.modules.setdefault("scipy", None)
    import warnings

    # NumPy's floating-point warnings (a degenerate θ divides by zero, a huge one overflows: the output then
    # reads the fill, as grid_sample's would) are Python's, not a message for the shell: stderr carries
    # stntool's own lines only
    warnings.simplefilter("ignore", RuntimeWarning)
    from . import _runtime

    _runtime.cli_process = True
    _runtime.compile_notice = True  # "stntool: compiling kernels for ..." on a first compile
    from . import _interrupts

    _interrupts.sigterm_as_sigint()  # SIGTERM winds a run down as Ctrl-C does, and ends it with status 143
    try:
        cli(prog_name="stntool")
        code = 0
    except SystemExit as e:
        code = e.code
    except KeyboardInterrupt:  # before a command started (Click parsing the command line)
        _say_interrupted()
        code = 130
    if code == 130 and _interrupts.terminated:
        code = 143
    if "numba" not in sys.modules:
        sys.exit(code)
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    import atexit
    import os
    import threading

    # as the interpreter does before atexit: threading's exit hooks (which tell thread pools such as the
    # CPU kernels' row pool to stop), then wait for the non-daemon threads
    shutdown = getattr(threading, "_shutdown", None)
    if shutdown is not None:
        shutdown()
    else:
        for t in threading.enumerate():
            if t is not threading.current_thread() and not t.daemon:
                t.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more can be written anyway
            if stream is sys.stdout and code == 0:
                code = 1
    os._exit(code)
