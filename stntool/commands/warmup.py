"""``stntool warmup``: compile kernels ahead of time (Docker images, CI caches).

Thin layer over :mod:`stntool.warmup`. Heavy modules are imported inside the command body only.
"""

from __future__ import annotations

import os

import click

from ..warmup import DTYPES, FAMILIES, MODES, PADDINGS  # names only (no numpy, no numba)

EXAMPLES = """
\b
Examples:
  stntool warmup                       # what `stntool warp --theta ...` runs by default
  stntool warmup --all -j 4            # every kernel family, mode, padding and dtype, 4 processes
  stntool warmup --kernels affine,tps --modes bilinear,bicubic --dtypes uint8
  NUMBA_CACHE_DIR=/opt/stntool-cache stntool warmup --all    # a cache folder to keep (CI, Docker)

\b
  In a Dockerfile, after installing stntool (the runtime user must be able to write the folder:
  numba passes over a cache it cannot write):
    ENV NUMBA_CACHE_DIR=/opt/stntool-cache
    RUN stntool warmup --all && chmod -R a+rwX /opt/stntool-cache

\b
Lists are comma-separated. --all selects every value of the lists not given, so
--all --dtypes uint8 warms every kernel, mode and padding for uint8 images.
Defaults: --kernels affine --modes bilinear --paddings zeros --dtypes uint8,uint16,float32.
"""


def _listed(name, choices):
    def parse(ctx, param, value):
        if value is None:
            return None
        items = [v.strip().lower() for v in value.split(",") if v.strip()]
        bad = [v for v in items if v not in choices]
        if not items:
            raise click.BadParameter(f"give one or more of {', '.join(choices)}, separated by commas")
        if bad:
            raise click.BadParameter(f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} not one of "
                                     f"{', '.join(choices)}")
        return tuple(dict.fromkeys(items))

    return parse


_FAMILIES, _MODES, _PADDINGS, _DTYPES = FAMILIES, MODES, PADDINGS, DTYPES


def _jobs(ctx, param, value):
    if value is None:
        import os

        return min(2, os.cpu_count() or 1)
    if value < 1:
        raise click.BadParameter("must be at least 1")
    return value


@click.command(epilog=EXAMPLES, short_help="Compile kernels ahead of time (Docker images, CI).",
               context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--all", "everything", is_flag=True, help="Every value of the lists not given.")
@click.option("--kernels", "families", metavar="LIST", callback=_listed("kernels", _FAMILIES),
              help=f"Kernel families: {', '.join(_FAMILIES)}.")
@click.option("--modes", metavar="LIST", callback=_listed("modes", _MODES), help=f"{', '.join(_MODES)}.")
@click.option("--paddings", metavar="LIST", callback=_listed("paddings", _PADDINGS), help=f"{', '.join(_PADDINGS)}.")
@click.option("--dtypes", metavar="LIST", callback=_listed("dtypes", _DTYPES), help=f"{', '.join(_DTYPES)}.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
              help="Backend whose kernels to compile (auto: cuda when a GPU is usable, else cpu).")
@click.option("-j", "--jobs", type=int, callback=_jobs,
              help="Processes compiling at once (one kernel signature each; 1 = this process). "
                   "Default: 2, or 1 on a single core.")
@click.option("-q", "--quiet", is_flag=True, help="No per-kernel lines and no summary line.")
def warmup(everything, families, modes, paddings, dtypes, device, jobs, quiet):
    """Compile stntool's kernels into the on-disk cache before the first real run.

    Calls the public functions on small images for every chosen kernel family, mode, padding and
    dtype (with 1-4 channels and both --align-corners values), so later runs load the kernels from
    the cache instead of compiling them. The cache is NUMBA_CACHE_DIR when set, else
    stntool/sampling/__pycache__ and stntool/__pycache__, else numba's per-user cache folder (see
    docs/cli.md). Prints one
    line per kernel it compiles and a summary on stderr. Exit status: 0 ready, 1 a call failed or
    nothing could be cached (no writable cache folder), 2 usage error.
    """
    from .. import warmup as lib
    from ..cli_options import usage_errors

    with usage_errors():
        tasks = lib.plan(families, modes, paddings, dtypes, everything)
    from ..sampling import resolve_backend

    with usage_errors("--device"):
        backend = resolve_backend(device)
    try:
        result = lib.run(tasks, backend, jobs, notice=not quiet)
    except KeyboardInterrupt:
        click.echo("stntool warmup: interrupted; kernels compiled so far are cached", err=True)
        raise SystemExit(130) from None
    for name, reason in result.errors:
        click.echo(f"stntool: error: warmup {name}: {reason}", err=True)
    if not quiet:
        where = ", ".join(result.cache_dirs) or lib.cache_location()
        wanted = os.environ.get("NUMBA_CACHE_DIR")
        if result.uncached:
            where = f"none: {_why_uncached()} (the kernels were compiled in memory; a later run compiles them again)"
        elif wanted and result.cache_dirs and not all(_inside(d, wanted) for d in result.cache_dirs):
            where += f" (NUMBA_CACHE_DIR={wanted} is not writable: numba passed it over)"
        took = sum(c.seconds for c in result.compiled)
        if result.compiled:
            kernels = (f"{len(result.compiled)} kernel{'s' if len(result.compiled) != 1 else ''} compiled "
                       f"({took:.1f} s of compiling)")
        else:
            kernels = "CUDA kernels compiled or loaded" if backend == "cuda" else "nothing to compile"
        procs = f" in {result.processes} processes" if result.processes > 1 else ""
        click.echo(f"stntool warmup: {result.calls} calls ok{procs}, {kernels}, {result.seconds:.1f} s; "
                   f"cache: {where}", err=True)
    if result.exit_code:
        raise SystemExit(result.exit_code)
    if result.uncached and backend == "cpu":  # a warmup that keeps nothing has failed its purpose
        if quiet:  # errors are said with --quiet too
            click.echo(f"stntool: error: warmup: nothing was cached ({_why_uncached()})", err=True)
        raise SystemExit(1)


def _why_uncached() -> str:
    """Why no kernel could be cached: the folder that NUMBA_CACHE_DIR names, or the lack of any."""
    wanted = os.environ.get("NUMBA_CACHE_DIR")
    return f"NUMBA_CACHE_DIR={wanted} is not writable" if wanted else "no folder this user can write"


def _inside(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or inside it (both made absolute and real)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
