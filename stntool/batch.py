"""Run one per-image function over many images: discovery, output planning, a thread pool, a manifest.

This is the machinery every command shares (``warp`` today): a command supplies only what it does
to one decoded image. No Click here; problems with the arguments as a whole raise
:class:`stntool.errors.InvalidArgumentError` (the command line turns them into usage errors, exit 2),
problems with one input become that input's error line and manifest record (exit 1).

The steps, each usable on its own:

1. :func:`discover` turns paths, folders (``recursive``), list entries (:func:`read_list`: a file
   or stdin, one path a line or NUL-separated) and ``-`` (one image on stdin) into :class:`Item`
   objects, in order.
2. :func:`plan_outputs` gives each item its output path: under an output folder, folder scans and
   list entries keep their relative path (mirroring), explicit files keep their base name; a single
   input may go to a file or to ``-`` (stdout). ``suffix`` and ``fmt`` change the name; two items
   with one output, or an output that is an input, make that item fail.
   A command that writes several images per input plans them all here (``outputs``), so
   collisions, skipping and resuming see every one of them.
3. :func:`run_batch` reads and decodes each input, calls ``process(image, item)``, encodes and
   writes every :class:`Output` it returns atomically, writes one manifest line per output (an
   input whose planned outputs all exist is skipped; one with some missing writes those; a failed
   input gets an error line after the lines of the outputs it did write) in input order, prints
   one error line per failed input and a summary, and returns a :class:`Summary` whose
   ``exit_code`` is 0, 1 or 130 (interrupted).

Manifest lines: ``{"input", "output", "status": "ok"|"skipped"|"error", "error"}`` followed, when
the file was decoded, by ``frames`` and ``warning`` for animated/multi-page inputs, then the fields
the command gives (:attr:`Output.fields` on success, :attr:`Item.fields` on failure; ``warp`` puts a
:meth:`stntool.records.WarpSpec.to_record` there). Skipped inputs carry only the first four keys.

Example
-------
>>> import numpy as np, os, tempfile
>>> from stntool import batch, io
>>> from stntool.records import WarpSpec, apply_spec
>>> root = tempfile.mkdtemp()
>>> os.makedirs(f"{root}/in")
>>> with open(f"{root}/in/a.png", "wb") as f:
...     _ = f.write(io.encode_image(np.zeros((4, 6, 3), np.uint8), "png"))
>>> spec = WarpSpec(theta=((-1, 0, 0), (0, 1, 0)))
>>> def mirror(img, item):             # what the command does to one image
...     return batch.Output(apply_spec(img, spec, backend="numpy"), spec.replace(in_hw=img.shape[:2]).to_record())
>>> items, _ = batch.discover([f"{root}/in"])
>>> batch.plan_outputs(items, f"{root}/out")
'folder'
>>> summary = batch.run_batch(items, mirror, manifest=batch.Manifest(f"{root}/m.jsonl"), quiet=True)
>>> summary.exit_code, sorted(os.listdir(f"{root}/out"))
(0, ['a.png'])
>>> import shutil; shutil.rmtree(root)
"""

from __future__ import annotations

import collections
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field

from . import _runtime
from .errors import ImageWriteError, InvalidArgumentError, StnError

STDIN = "-"
#: ``Item.source`` of a folder that a scan could not list (:func:`discover`).
UNREADABLE = "unreadable folder"


@dataclass
class Item:
    """One input of a batch.

    Attributes
    ----------
    index : position in the batch (manifest lines follow it).
    input : the path as given, or ``"-"`` for image bytes on stdin.
    rel : the relative output path used under an output folder.
    source : ``"file"`` (given explicitly), ``"folder"`` (found by a scan), ``"list"`` (from a list
        file or a parameter file), ``"stdin"``, or :data:`UNREADABLE` (a folder a scan could not list: it
        fails with ``error`` and has no output).
    output : the planned output path (``"-"`` = stdout), set by :func:`plan_outputs`.
    outputs : every planned output path of this item (``[output]`` unless the ``outputs`` callback
        of :func:`plan_outputs` planned several); ``output`` is the first.
    error : a planning error; the item fails with it without being read.
    payload : anything the command attaches (e.g. a per-input :class:`~stntool.records.WarpSpec`).
    fields : manifest fields written after the status when this item fails; the per-image
        function may update them while it works (e.g. the resolved warp record).
    earlier_output : an input that is another input's planned output (an earlier run into its own input
        folder with ``--suffix``): skipped, not warped again (:func:`plan_outputs`).
    beside : the files planned beside each output (labels, masks: the ``beside`` callback of
        :func:`plan_outputs`), ``{output: [path, ...]}``.
    failed : set when the item failed while it was processed (its outputs removed): what a command kept of
        it for later (a contact sheet's row) is dropped.
    """

    index: int
    input: str
    rel: str
    source: str = "file"
    output: str | None = None
    outputs: list | None = None
    error: str | None = None
    payload: object = None
    fields: dict = field(default_factory=dict)
    earlier_output: bool = False
    beside: dict = field(default_factory=dict)
    failed: bool = False


@dataclass
class Output:
    """One image a per-image function produced.

    ``image`` is written to ``output`` (a path; ``None`` = the item's planned output, ``item.output``)
    in the format its extension names (``--format`` when the path has none). When the item's outputs
    were planned (:func:`plan_outputs`), ``output`` must be one of ``item.outputs``. ``fields``
    follow the status in its manifest line. ``files`` maps further paths to the bytes to write
    there (labels beside an image, say): each is written atomically before the image, and removed
    again if the image cannot be written. ``quality``, when not None, encodes this image at it instead of
    at ``--quality`` (a replay encodes each output as its record says it was).
    """

    image: object
    fields: dict = field(default_factory=dict)
    output: str | None = None
    files: dict = field(default_factory=dict)
    quality: int | None = None


@dataclass
class Summary:
    """Counts of a finished (or interrupted) batch; ``exit_code``: 130 interrupted, 1 failures, else 0.

    ``ok``, ``skipped``, ``failed`` and ``total`` count inputs (an input with one failed output
    failed; one whose outputs all existed was skipped); ``outputs`` counts the files written (the
    summary line names it when it differs from ``ok``).
    """

    command: str = "stntool"
    ok: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0
    outputs: int | None = None
    elapsed: float = 0.0
    interrupted: bool = False
    manifest_failed: bool = False
    side_failed: bool = False  # a further file the command writes (a contact sheet) could not be written
    stopped: bool = False
    compile_seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return 130
        return 1 if (self.failed or self.manifest_failed or self.side_failed or self.stopped) else 0

    def line(self) -> str:
        """The summary line; time spent compiling kernels (first run) is left out of the rate."""
        working = self.elapsed - self.compile_seconds
        if self.compile_seconds > 0 and working > 0:
            rate = f"{self.ok / working:.1f} images/s excluding {self.compile_seconds:.1f} s compiling kernels"
        else:
            rate = f"{self.ok / self.elapsed if self.elapsed > 0 else 0.0:.1f} images/s"
        written = f", {self.outputs} outputs written" if self.outputs not in (None, self.ok) else ""
        text = (f"{self.command}: {self.ok} ok, {self.skipped} skipped, {self.failed} failed{written}"
                f" in {self.elapsed:.2f} s ({rate})")
        if self.interrupted:
            done = self.ok + self.skipped + self.failed
            text += f"; interrupted, {max(0, self.total - done)} not done (rerun with --skip-existing)"
        return text


# --------------------------------------------------------------------------- discovery

def read_list(source, null: bool = False, stdin=None) -> list:
    """Paths from a list file (``-`` = stdin), one per line or NUL-separated; empty entries dropped.

    Raises :class:`InvalidArgumentError` when the file cannot be read.
    """
    if source == STDIN:
        data = (stdin or sys.stdin.buffer).read()
    else:
        try:
            with open(source, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InvalidArgumentError(f"cannot read {source}: {e.strerror}") from None
    if not null and b"\0" in data:  # open() refused each entry ("embedded null byte"), one line each
        raise InvalidArgumentError(f"{'stdin' if source == STDIN else source} holds NUL bytes: a list from "
                                   "find -print0 needs -0/--null (or it is not a list of paths)")
    items = []
    for raw in data.split(b"\0" if null else b"\n"):
        if not null:
            raw = raw.rstrip(b"\r")
        if raw:
            items.append(os.fsdecode(raw))
    return items


def safe_rel(path) -> str:
    """Relative path to mirror under an output folder, or the base name when absolute or climbing out."""
    p = os.path.normpath(path)
    if os.path.isabs(p) or p == ".." or p.startswith(".." + os.sep):
        return os.path.basename(p)
    return p


def _has_subfolders(path, skip=()) -> bool:
    """Whether the folder ``path`` holds a sub-folder that ``-r`` would enter: not hidden, not among ``skip``
    (:func:`stntool.io.folder_key` keys)."""
    from .io import folder_key

    try:
        with os.scandir(path) as it:
            return any(not e.name.startswith(".") and e.is_dir() and folder_key(e.path) not in skip for e in it)
    except OSError:
        return False


def discover(inputs=(), recursive: bool = False, listed=(), warn=None, leave_out=()):
    """Items for ``inputs`` (files, folders, ``-``) followed by ``listed`` paths, in order.

    Folders give their images sorted by name (``recursive`` enters sub-folders); files given in
    ``inputs`` map to their base name under an output folder, ``listed`` paths (entries of a
    ``--files-from`` list, see :func:`read_list`, or the inputs named by a parameter file) keep
    their relative path. ``warn(msg)`` is called for folders without images. Sub-folders that are
    among ``leave_out`` (paths; the output folder, so a rerun does not read the last run's outputs) are
    not scanned. Returns
    ``(items, folders)``, ``folders`` being the number of folder arguments. Raises
    :class:`InvalidArgumentError` when there is no input or stdin (``-``) is named twice.
    """
    from .io import display, folder_key, scan_directory

    entries = [(p, "arg") for p in inputs] + [(p, "list") for p in listed]
    if not entries:
        raise InvalidArgumentError("no inputs (give files, folders, --files-from or -)")
    if sum(1 for p, _ in entries if p == STDIN) > 1:
        raise InvalidArgumentError("- (stdin) can be given only once")
    items, folders = [], 0
    skip = {key for key in map(folder_key, leave_out) if key is not None}
    for path, how in entries:
        if path != STDIN and os.path.isdir(path):
            folders += 1
            before = len(items)

            def unreadable(folder, rel, reason):  # an input the batch cannot read, failed at its place
                items.append(Item(len(items), folder, rel, UNREADABLE, error=f"cannot read this folder: {reason}"))

            for found_path, rel in scan_directory(path, recursive, skip, unreadable):
                items.append(Item(len(items), found_path, rel, "folder"))
            if len(items) == before and warn is not None:
                hint = "" if recursive or not _has_subfolders(path, skip) else " (it has sub-folders: -r enters them)"
                warn(f"no images in folder {display(path)}{hint}")
        elif path == STDIN:
            items.append(Item(len(items), path, "stdin.png", "stdin"))
        elif how == "list":
            items.append(Item(len(items), path, safe_rel(path), "list"))
        else:
            items.append(Item(len(items), path, os.path.basename(os.path.normpath(path)), "file"))
    return _once_each(items, warn), folders


def _once_each(items, warn=None) -> list:
    """``items`` without those that repeat an earlier one: the same file (:func:`path_key`) with the same relative
    output path (``a.png in/`` naming in/a.png twice, a list naming ``in/a.png`` and ``./in/a.png``), which
    would plan one output twice; ``warn(msg)`` says so once. The items left are numbered again."""
    from .io import display

    seen, kept, again = set(), [], []
    resolve = _OutputReal()
    for it in items:
        if it.source in (UNREADABLE, "stdin"):
            kept.append(it)
            continue
        key = (path_key(it.input, resolve), os.path.normpath(it.rel))
        if key in seen:
            again.append(it.input)
            continue
        seen.add(key)
        kept.append(it)
    if not again:
        return items
    for k, it in enumerate(kept):
        it.index = k
    if warn is not None:
        more = f" and {len(again) - 1} more" if len(again) > 1 else ""
        warn(f"{display(again[0])}{more} given more than once: each is read once")
    return kept


def path_key(path: str, resolve=None) -> str:
    """One spelling per path: the real path of its folder (links and ``..`` in it resolved: ``link/../a.png`` is
    where the link leads) joined with its own name, which stays as it is (a link among the inputs is an input
    of its own), case-normalized. ``resolve``: an :class:`_OutputReal` whose folders are resolved once, for
    many paths in few folders."""
    folder, name = os.path.split(os.fspath(path))
    if name in ("", os.curdir, os.pardir):
        return os.path.normcase(os.path.realpath(path))
    return os.path.normcase(os.path.join((resolve or _OutputReal()).folder(folder), name))


def attach_payloads(items, payloads: dict, missing: str = "no parameters for this input"):
    """One item per payload of its input (``payloads[item.input]`` is a list), with ``item.payload`` set.

    Inputs match payloads' keys as paths (``./in/a.png`` is ``in/a.png``, and so is its absolute path; a link to
    a file matches that file's key unless the link has one of its own or the file is an input too; relative
    keys are taken from the working folder; :func:`path_key`). A payload with a ``name``
    attribute that is not None sets the item's relative output path
    (several outputs for one input, each named by the record that made it; absolute names and
    names climbing out with ``..`` keep only their base name). Items without
    payloads keep ``payload = None`` and fail with ``missing``. Returns the new list, renumbered.
    """
    import dataclasses

    out = []
    folders = _OutputReal()
    by_path = {}  # the same path spelled another way (./in/a.png, in//a.png, /abs/in/a.png): one list
    for key, value in payloads.items():
        if key != STDIN:
            by_path.setdefault(path_key(key, folders), []).extend(value)
    real = None  # real path -> the path keys naming that file (a link to it), once one is needed
    inputs = None  # the path keys of the items: a recorded file that is an input itself keeps its records
    for it in items:
        found = payloads.get(it.input)
        if not found and it.input != STDIN:
            found = by_path.get(path_key(it.input, folders))
        if not found and it.input != STDIN:  # a link to a recorded file
            if real is None:
                real = {}
                for key in by_path:
                    real.setdefault(os.path.realpath(key), []).append(key)
                inputs = {path_key(other.input, folders) for other in items if other.input != STDIN}
            keys = real.get(os.path.realpath(it.input), [])
            found = by_path[keys[0]] if len(keys) == 1 and keys[0] not in inputs else None  # (a file recorded
            # under two names: neither; a file given too: its own, and the link is a new input without records)
        found = found or [None]
        for p in found:
            new = dataclasses.replace(it, index=len(out), payload=p, fields=dict(it.fields))
            if p is None:
                new.error = new.error or missing
            elif getattr(p, "name", None) is not None:
                new.rel = safe_rel(p.name)  # never outside the output folder
            out.append(new)
    return out


# --------------------------------------------------------------------------- output planning

#: Every extension of a format's files (``-o out.jpeg --format jpg``).
_SPELLINGS = {".jpg": (".jpg", ".jpeg", ".jpe"), ".tif": (".tif", ".tiff")}
#: The planning error of an input whose output would replace an input file.
ONTO_INPUT = "refusing to write onto an input file (use another -o or --suffix)"


def plan_outputs(items, output, fmt: str = "same", suffix: str = "", folders: int = 0, outputs=None,
                 skip_existing: bool = False, side_files=None, beside=None, read_files=None,
                 reads_beside=None) -> str:
    """Set ``item.output`` and ``item.outputs`` for every item; returns ``"folder"``, ``"file"`` or ``"stdout"``.

    ``output`` is a folder, a file (one input, with an image extension) or ``-``. Under a folder
    an item's output is ``output/rel`` with ``suffix`` added to the base name and the extension of
    ``fmt`` (``"same"`` keeps it when OpenCV can write it, else ``.png``). ``folders`` (from
    :func:`discover`) > 0 means a folder was given, so even one found image is not "a single input".
    ``outputs(item, path)``, when given, returns every output path of the item (for a command that
    writes several images per input, e.g. ``[f"{stem}_{k}{ext}" ...]`` from ``path``); each goes
    through the same checks. ``beside(item, path)``, when given, returns the files the command will write
    beside output ``path`` (labels, masks), which go through them too (``item.beside``). An item with an
    output that is an input, or an output of an earlier item, gets ``item.error``, except with
    ``skip_existing`` when that output exists (it is skipped, never written). An input that is another
    item's planned output (an earlier run into its own input folder with ``--suffix``) is marked
    ``earlier_output``: skipped, not warped again. ``side_files`` maps an
    option to a further file the command writes (``{"--manifest": path}``), which may be neither an input,
    nor a planned output, nor one of ``read_files`` (``{option: path}``: the files the command reads besides
    its images), nor another side file. ``reads_beside(item)``, when given, returns the files read with an
    item's image (its label file, its mask): no output or file beside one may be one of them. Raises
    :class:`InvalidArgumentError` when ``output`` cannot serve these items (several outputs per input cannot go
    to stdout) or a side file would destroy an input or clash with an image.
    """
    from .io import FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, can_write, display

    if output is None:
        raise InvalidArgumentError("-o/--output is required (a folder, a file, or - for stdout)")
    single = len(items) == 1 and folders == 0
    to_stdout = output == STDIN
    if to_stdout and not single:
        raise InvalidArgumentError("-o - (stdout) takes exactly one input image")
    if to_stdout and "stdout" in _runtime.closed_streams:
        raise InvalidArgumentError("-o - writes the image's bytes to stdout, which is closed (>&-)")
    if to_stdout and _stdout_is_terminal():
        raise InvalidArgumentError("-o - writes the image's bytes to stdout, which is a terminal: redirect it "
                                   "(> out.png) or pipe it")
    out_is_file = to_stdout or (single and not os.path.isdir(output) and not output.endswith(os.sep)
                                and os.path.splitext(output)[1].lower() in IMAGE_EXTENSIONS)
    if not out_is_file and os.path.exists(output) and not os.path.isdir(output):
        raise InvalidArgumentError(f"-o {display(output)} exists and is not a folder")
    if (not out_is_file and not os.path.isdir(output) and not output.endswith(os.sep)
            and os.path.splitext(output)[1].lower() in IMAGE_EXTENSIONS):
        raise InvalidArgumentError(f"-o {display(output)} names an image file, but there are several inputs "
                                   "(give a folder)")
    if fmt != "same" and fmt not in FORMAT_EXTENSIONS:
        raise InvalidArgumentError(f"unknown format {fmt!r}")
    if out_is_file and not to_stdout and fmt == "same" and not can_write(os.path.splitext(output)[1]):
        # an image extension this tool reads but cannot write (.gif): every input would fail the same way
        raise InvalidArgumentError(f"-o {display(output)}: cannot write {os.path.splitext(output)[1]!r} files "
                                   "(give .png, .jpg, .webp or .tif)")
    if any(sep in suffix for sep in {os.sep, os.altsep or os.sep, "/"}):
        raise InvalidArgumentError(f"--suffix {suffix!r} contains a path separator (it changes the base name only)")
    if suffix and out_is_file:
        raise InvalidArgumentError(f"--suffix names outputs under a folder; -o {'-' if to_stdout else display(output)} "
                                   "names the output itself")
    output_real = _OutputReal()
    pairs = [(it.index, _input_real(it, output_real)) for it in items]  # each input's real path, found once
    reals = {index: real for index, real in pairs if real is not None}
    input_real = {real for _, real in pairs if real is not None}
    claimed = {}
    planned_by = {}  # real path of every planned output -> the input planning it
    planned = []  # (item, its outputs' real paths): checked once every item's outputs are known
    absent = set()  # indices of named inputs that are not there
    for it in items:
        if it.source == UNREADABLE:  # fails with its error; nothing is planned for it
            it.output, it.outputs = None, []
            continue
        if to_stdout:
            it.output = STDIN
            it.outputs = [STDIN]
            if outputs is not None and list(outputs(it, STDIN)) != [STDIN]:
                raise InvalidArgumentError("-o - (stdout) takes exactly one output image")
            continue
        if out_is_file:
            it.output = output
            ext = FORMAT_EXTENSIONS.get(fmt) if fmt != "same" else None
            if ext is not None and os.path.splitext(output)[1].lower() not in _SPELLINGS.get(ext, (ext,)):
                raise InvalidArgumentError(f"-o {display(output)} does not end in {ext} (--format {fmt})")
        else:
            base, ext = os.path.splitext(it.rel)
            if fmt != "same":
                ext = FORMAT_EXTENSIONS[fmt]
            elif it.input == STDIN or not can_write(ext):
                ext = ".png"
            it.output = os.path.join(output, base + suffix + ext)
        paths = [it.output] if outputs is None else [os.fspath(p) for p in outputs(it, it.output)]
        if not paths:
            raise InvalidArgumentError(f"no output planned for {display(it.input)}")
        it.output, it.outputs = paths[0], paths
        if beside is not None:
            it.beside = {path: [os.fspath(p) for p in beside(it, path)] for path in paths}
        keys, twice = {}, None  # real path -> path, in order (a dict: an input may plan many thousands of outputs)
        if it.source in ("file", "list") and not os.path.exists(it.input):
            planned.append((it, keys, twice))  # not there: it fails as it is read ("no such file"), claiming nothing
            absent.add(it.index)
            continue
        for path in [*paths, *(p for path in paths for p in it.beside.get(path, ()))]:
            key = output_real(path)
            planned_by.setdefault(key, it.input)
            if key in keys and twice is None:
                twice = f"output {display(path)} would also be written by {display(it.input)}"
            keys.setdefault(key, path)
        planned.append((it, keys, twice))
    overlap = bool(input_real & planned_by.keys())
    for it in items:
        it.earlier_output = False
        if overlap and it.index in reals and it.index not in absent:  # one not there is no earlier output
            by = planned_by.get(reals[it.index])
            it.earlier_output = by is not None and by != it.input
    # an input that looks like an earlier run's output is skipped, yet still never written onto: it may be an
    # image of its own that shares the name (x.png beside x.jpg with --format png)
    earlier = {reals[it.index] for it in items if it.earlier_output}
    if absent:
        input_real = {real for index, real in reals.items() if index not in absent}
    read_real = set()  # the files read with the inputs that will be read (their label files, masks)
    if reads_beside is not None:
        for it in items:
            if it.source != UNREADABLE and not it.earlier_output and it.index not in absent and it.input != STDIN:
                read_real.update(output_real(p) for p in reads_beside(it))
    for it, keys, problem in planned:
        for key, path in keys.items():
            if key in read_real:  # another input's label file or mask, resuming or not
                problem = problem or f"refusing to write onto {display(path)}, a file read with an input"
            elif key in input_real and skip_existing and os.path.lexists(path):
                pass  # resuming: this output exists, so it is skipped, never written
            elif key in earlier:
                problem = problem or (f"refusing to write onto {display(path)}, which is among the inputs (an "
                                      "earlier run's output? --skip-existing keeps it; delete it to write it again)")
            elif key in input_real:
                problem = problem or ONTO_INPUT
            elif key in claimed:
                problem = problem or f"output {display(path)} would also be written by {display(claimed[key])}"
        if problem is not None:
            it.error = problem
        else:
            claimed.update((k, it.input) for k in keys)
    onto = [it for it, _, _ in planned if it.error == ONTO_INPUT]
    if onto and len(onto) == len(planned) - len(absent):  # -o the input folder, or the input file itself
        raise InvalidArgumentError(f"-o {display(output)}: every input{' there is' if absent else ''} would write "
                                   "onto an input file (use another -o or --suffix)")
    _check_side_files(side_files or {}, input_real, planned_by, output_real, read_files, read_real)
    return "stdout" if to_stdout else ("file" if out_is_file else "folder")


def _check_side_files(side_files, input_real, planned_by, output_real, read_files=None, read_with=()):
    """:class:`InvalidArgumentError` for the first side file (``{option: path}``; None paths skipped) whose real
    path is an input's (``input_real``), a planned output's (``planned_by``: real path -> its input), a file the
    command reads (``read_files``, ``{option: path}``: a ``--files-from`` list, TPS points, a parameter file;
    None and ``-`` skipped), a file read with an input (``read_with``: real paths of label files and masks) or
    another side file's."""
    from .io import display

    reads = {output_real(p): what for what, p in (read_files or {}).items() if p and p != STDIN}
    written = {}
    for what, path in side_files.items():
        if not path:
            continue
        key = output_real(path)
        if key in input_real:
            raise InvalidArgumentError(f"{what} {display(path)} is an input file; refusing to write onto it")
        if key in planned_by:
            raise InvalidArgumentError(f"{what} {display(path)} is also the output of {display(planned_by[key])}")
        if key in reads:
            raise InvalidArgumentError(f"{what} {display(path)} is the {reads[key]} file; refusing to write onto it")
        if key in read_with:
            raise InvalidArgumentError(f"{what} {display(path)} is a file read with an input (a label file or "
                                       "mask); refusing to write onto it")
        if key in written:
            raise InvalidArgumentError(f"{what} and {written[key]} both name {display(path)}")
        written[key] = what


def check_side_file(path, items, what: str):
    """:class:`InvalidArgumentError` when ``path``, a further file a command writes (a training curve), is one
    of the inputs of ``items``, which have no planned outputs (commands with outputs pass their side files to
    :func:`plan_outputs`)."""
    _check_side_files({what: path}, _real_paths(items), {}, _OutputReal())


def relative_name(path, output) -> str | None:
    """An output's name for its record (``name``): its path under the output folder, ``/``-separated, or its
    base name when ``output`` is a file, None for stdout (``-``: no file to name); ``stntool warp --params``
    writes a named record there again."""
    if path == STDIN:
        return None
    rel = os.path.relpath(path, output)
    if rel.startswith(os.pardir) or rel == os.curdir:  # outside the folder, or output is the file itself
        rel = os.path.basename(path)
    return rel.replace(os.sep, "/")


class _OutputReal:
    """Case-normalized real paths of output files, each folder resolved once (per batch or plan).

    A file's real path is its folder's joined with its name, unless the name is a symbolic link
    (checked every time, one ``lstat``): the same answer as ``os.path.realpath`` for a folder that
    does not change while the batch runs, at a tenth of its cost per output.
    """

    def __init__(self):
        self._folders = {}

    def folder(self, folder) -> str:
        """The real path of ``folder`` (``""``: the working folder), resolved once."""
        real = self._folders.get(folder)
        if real is None:
            real = self._folders[folder] = os.path.realpath(folder or os.curdir)
        return real

    def __call__(self, path) -> str:
        folder, name = os.path.split(os.fspath(path))
        if name in ("", os.curdir, os.pardir) or os.path.islink(path):
            return os.path.normcase(os.path.realpath(path))
        return os.path.normcase(os.path.join(self.folder(folder), name))


def _input_real(item, resolve=None):
    """The case-normalized real path of the item's input; None for stdin and paths that have none. Found once
    per item (planning and the batch share it), by ``resolve`` (an :class:`_OutputReal`: each folder once) when
    given."""
    if item.input == STDIN:
        return None
    real = item.__dict__.get("_real", _UNSET)
    if real is _UNSET:
        try:
            real = resolve(item.input) if resolve is not None else os.path.normcase(os.path.realpath(item.input))
        except (OSError, ValueError):
            real = None
        item._real = real
    return real


_UNSET = object()


def _real_paths(items, resolve=None) -> set:
    """Case-normalized real paths of the items' inputs (stdin left out)."""
    return {real for real in (_input_real(it, resolve) for it in items) if real is not None}


# --------------------------------------------------------------------------- manifest

class Manifest:
    """A JSONL manifest: one line per record, flushed as written; ``-`` writes to stdout.

    ``append`` keeps an existing file's lines and adds after them (resuming a run with
    ``skip_existing`` keeps the earlier run's records; a reader takes the last line per output).
    A missing folder is created, as the output folder is (``--manifest out/run.jsonl -o out/``).
    Raises :class:`ImageWriteError` when the file cannot be created. Use as a context manager or
    call :meth:`close` (closing stdout is left to the process).
    """

    def __init__(self, path, append: bool = False):
        self.path = path
        if path == STDIN:
            if "stdout" in _runtime.closed_streams:
                raise InvalidArgumentError("- writes the records to stdout, which is closed (>&-)")
            self.file = sys.stdout
        else:
            try:
                folder = os.path.dirname(os.fspath(path))
                if folder:
                    os.makedirs(folder, exist_ok=True)
                if os.path.isfile(path) and not _is_jsonl(path):
                    raise InvalidArgumentError(f"{path} exists and is not a manifest (its first line is not a JSON "
                                               "object): not replaced; give another file or delete it")
                if append and os.path.isfile(path):
                    self._end_last_line()
                # unbuffered: each line is written whole or, if the disk fills, cut back (see write)
                self.file = open(path, "ab" if append else "wb", buffering=0)
            except OSError as e:
                from .io import folder_problem

                why = folder_problem(path) if isinstance(e, (FileExistsError, NotADirectoryError)) else None
                raise ImageWriteError(f"cannot write {path}: {why or e.strerror}") from None

    def _end_last_line(self):
        """A file cut inside its last line (kill -9, full disk) loses that part of a line, so the next record
        starts a line and every line stays one JSON object (``--params`` and ``jq`` read the file whole); a
        last line that is a whole object without its newline gets one."""
        with open(self.path, "rb+") as f:
            end = f.seek(0, os.SEEK_END)
            if end == 0:
                return
            f.seek(end - 1)
            if f.read(1) == b"\n":
                return
            cut, pos = 0, end  # the start of the last line: back a MiB at a time (a TPS record may be longer)
            while pos > 0:
                start = max(0, pos - (1 << 20))
                f.seek(start)
                k = f.read(pos - start).rfind(b"\n")
                if k >= 0:
                    cut = start + k + 1
                    break
                pos = start
            f.seek(cut)
            try:
                whole = isinstance(json.loads(f.read()), dict)
            except (ValueError, RecursionError):
                whole = False
            if whole:
                f.seek(0, os.SEEK_END)
                f.write(b"\n")
            else:
                f.truncate(cut)

    @property
    def to_stdout(self) -> bool:
        return self.path == STDIN

    def write(self, record: dict):
        """Write and flush one record (``OSError`` on a full disk; ``BrokenPipeError`` on a closed pipe). A line
        that cannot be written whole is cut from the file again (where the file system lets it), so the file
        never ends in part of a line."""
        from .io import _write_all, json_line

        line = json_line(record) + "\n"
        if self.to_stdout:
            self.file.write(line)
            self.file.flush()
            return
        data = line.encode("ascii")  # json_line escapes every non-ASCII character
        fd = self.file.fileno()
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
        except OSError:
            try:
                os.ftruncate(fd, start)
                os.lseek(fd, start, os.SEEK_SET)  # a file opened to replace (not append) writes on from here
            except OSError:
                pass
            raise

    def close(self):
        """Close the file (OSError if the last bytes cannot be written); stdout stays open."""
        f, self.file = self.file, None
        if f is not None and f is not sys.stdout:
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_jsonl(path, limit: int = 1 << 20) -> bool:
    """Whether the file ``path`` is empty or starts with a line (its first ``limit`` bytes) that is a JSON object:
    a manifest or parameter file, which ``--manifest`` may replace or add to, not notes or an image."""
    with open(path, "rb") as f:
        head = f.read(limit)
    lines = head.removeprefix(b"\xef\xbb\xbf").split(b"\n")
    k = next((k for k, line in enumerate(lines) if line.strip()), None)
    if k is None:
        return True  # empty, or blank lines only
    first = lines[k].strip()
    try:
        return isinstance(json.loads(first), dict)
    except (ValueError, RecursionError):
        return k == len(lines) - 1 and first.startswith(b"{")  # a first line cut short by a stopped run


# --------------------------------------------------------------------------- running

def say(message: str):
    """Write one line to stderr, never while a decoder's fd-2 output is being captured (see io.STDERR_LOCK)."""
    from .io import STDERR_LOCK

    with STDERR_LOCK:
        try:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass


def _records_for(item, process, opts):
    """Read, decode, process, encode and write one item; returns ``(status, records)`` (never raises StnError).

    ``status`` is the input's: ``"error"`` when any output failed, ``"skipped"`` when every planned output
    existed, ``"interrupted"`` when the batch was stopped (``opts["stop"]``) between its outputs (the records
    of those written), else ``"ok"``. A failed input leaves no output: the files it wrote before failing
    (images and the files beside them) are removed, and its records are the skipped ones, one per image
    removed (``"error"``, ``"removed": True``) and the error.
    """
    from .io import (decode_image, display, encode_image, frame_count, header_info, icc_profile, pnm_maxval,
                     read_file_bytes, sigint_deferred, sniff_format, write_stdout)

    planned = list(item.outputs) if item.outputs else [item.output]
    position = {p: k for k, p in enumerate(planned)}
    head = {"input": item.input, "output": item.output, "status": "error", "error": None}
    extra = {}
    records = []
    item.written = {}  # each output written -> its files (beside it, then itself): removed if the item fails later
    stop = opts.get("stop")
    current = item.output
    writing = None  # the output being written, named in its error
    try:
        if item.earlier_output:  # an earlier run's output, found among the inputs (plan_outputs): one line, the
            return "skipped", [dict(head, output=item.input, status="skipped")]  # file itself (not N of its own)
        if item.error:
            raise StnError(item.error)
        existing = set()
        if not opts["overwrite"]:
            existing = {p for p in planned if p != STDIN and os.path.lexists(p)}
            if not opts["skip_existing"]:  # the first output that exists, or has a file beside it that does
                for p in planned:
                    found = p if p in existing else next((b for b in item.beside.get(p, ()) if os.path.lexists(b)),
                                                         None)
                    if found is not None:
                        current = writing = p
                        raise StnError(f"output {display(found)} exists (use --overwrite or --skip-existing)"
                                       if found == p else f"{display(found)}, written beside it, exists (use "
                                       "--overwrite or --skip-existing)")
        if opts["skip_existing"]:  # a folder, pipe or broken link where an output goes was never written there
            odd = next((p for p in planned if p in existing and not os.path.isfile(p)), None)
            if odd is not None:
                current = writing = odd
                raise StnError(f"output {display(odd)} exists and is not a regular file (a folder, pipe, device or "
                               "broken link): not skipped, not replaced")
        if existing and existing.issuperset(planned):  # resuming, and every output was written
            return "skipped", [dict(head, output=p, status="skipped") for p in planned]
        if stop is not None and stop.is_set():
            return "interrupted", []
        data = opts["stdin_bytes"] if item.input == STDIN else read_file_bytes(item.input,
                                                                                max_pixels=opts["max_pixels"])
        said = []
        img = decode_image(data, opts["max_pixels"], opts["exif"], warnings=said)
        frames = frame_count(data)
        notes = [f"decoder said: {said[-1]}"] if said else []
        maxval = pnm_maxval(data)
        if maxval is not None and maxval not in (255, 65535):  # OpenCV keeps the samples; a PNM output says 255/65535
            notes.append(f"its maxval is {maxval}: the samples are kept as stored (0-{maxval}), not scaled to "
                         f"{'255' if maxval < 256 else '65535'}")
        if frames > 1:
            extra = {"frames": frames}
            notes.insert(0, f"has {frames} frames or pages; only the first was read")
        if notes:
            extra["warning"] = "; ".join(notes)
        icc = icc_profile(data)  # a colour profile goes with the pixels to formats that hold one (io.encode_image)
        results = process(img, item)
        if isinstance(results, Output):
            results = [results]
        fmt_opt = opts["fmt"]
        for res in results:
            path = item.output if res.output is None else os.fspath(res.output)
            current = path
            if path == STDIN:
                fmt = fmt_opt if fmt_opt != "same" else _writable_or_png(sniff_format(data) or header_info(data)[0])
            else:
                if item.outputs and path not in position:
                    raise StnError(f"output {display(path)} was not planned (plan_outputs' outputs)")
                if path in existing:  # resuming: this one was written by an earlier run
                    records.append({**head, "output": path, "status": "skipped"})
                    current = _after(planned, position, path)
                    continue
                ext = os.path.splitext(path)[1]
                fmt = ext if ext else (fmt_opt if fmt_opt != "same" else "png")
                if path != item.output and opts["output_real"](path) in opts["input_real"]:
                    raise StnError(f"refusing to write onto an input file ({display(path)})")
            quality = opts["quality"] if res.quality is None else res.quality
            blob = encode_image(res.image, fmt, quality, icc=icc)
            if path == STDIN:
                if res.files:
                    raise StnError("-o - (stdout) cannot carry the files written beside an image")
                try:
                    write_stdout(blob)
                except BrokenPipeError:
                    raise ImageWriteError("stdout was closed before the image was written (broken pipe)") from None
                except OSError as e:  # a full disk behind a redirection
                    raise ImageWriteError(f"cannot write to stdout: {e.strerror or e}") from None
            rec = {**head, "output": path, "status": "ok", **extra, **res.fields}
            if quality is not None:  # what the file was encoded at: a replay encodes it so again
                rec["quality"] = quality
            if extra.get("warning") and res.fields.get("warning"):  # the decoder's and the command's, both said
                rec["warning"] = f"{extra['warning']}; {res.fields['warning']}"
            with sigint_deferred():  # a file written is a file recorded (Ctrl-C: see KeyboardInterrupt below)
                if path != STDIN:
                    writing = path
                    if not _write_with_files(path, blob, res.files, opts["overwrite"], opts["input_real"],
                                             opts["output_real"], resuming=opts["skip_existing"]):
                        rec = {**head, "output": path, "status": "skipped"}  # another run wrote it meanwhile
                    else:
                        item.written[path] = [*(os.fspath(f) for f in res.files), path]
                    writing = None
                records.append(rec)
            current = _after(planned, position, path)  # what a failure before the next output is about
            if stop is not None and stop.is_set() and current != path:  # Ctrl-C: no more of this input's outputs
                return "interrupted", records
        if records and all(r["status"] == "skipped" for r in records):
            return "skipped", records
        return "ok", records
    except StnError as e:
        head["error"] = str(e)
        writing = getattr(e, "stntool_path", writing)
    except _defensive_errors() as e:  # defensive: never a traceback for one file
        head["error"] = _one_line(e)
    except KeyboardInterrupt as e:  # in the caller's thread (one job): the outputs written so far are recorded
        e.stntool_records = records
        raise
    except BaseException:  # not a user error (a bug): the input still leaves no output
        with sigint_deferred():
            _remove(f for files in item.written.values() for f in files)
        raise
    if writing is not None and display(writing) not in head["error"]:
        head["error"] = f"{display(writing)}: {head['error']}"  # the output that could not be written
    if item.written:
        with sigint_deferred():
            kept = _remove(f for files in item.written.values() for f in files)
        gone = {r["output"] for r in records if r["status"] == "ok" and r["output"] not in kept}
        failed_at = display(writing if writing is not None else current)
        records = [r if r["output"] not in gone else
                   {**head, "output": r["output"], "error": f"removed: the input failed at {failed_at}",
                    "removed": True, **({"name": r["name"]} if "name" in r else {})} for r in records]
    records.append({**head, "output": current, **extra, **item.fields})
    item.failed = True
    return "error", records


def _defensive_errors() -> tuple:
    """Exceptions that fail one input instead of the batch although no stntool check raised them: Python's
    value, arithmetic, memory and OS errors, and OpenCV's (an image OpenCV cannot process as asked)."""
    import sys

    cv2 = sys.modules.get("cv2")
    cv2_error = getattr(cv2, "error", None)
    base = (ValueError, ArithmeticError, MemoryError, OSError)
    return base + (cv2_error,) if isinstance(cv2_error, type) and issubclass(cv2_error, Exception) else base


def _one_line(e: BaseException) -> str:
    """``"<type>: <message>"`` on one line; OpenCV's messages (``OpenCV(5.0) file:line: error: (-215) ... in
    function 'f'``, over several lines) keep their reason."""
    from .io import opencv_reason

    if type(e).__module__ == "cv2":
        return "OpenCV cannot process this image: " + opencv_reason(str(e))
    return f"{type(e).__name__}: " + " ".join(str(e).split())


def _remove(paths) -> set:
    """Remove the files ``paths`` (a failed input's outputs); returns those still there (unlink failed)."""
    kept = set()
    for p in paths:
        try:
            os.unlink(p)
        except FileNotFoundError:
            pass
        except OSError:
            kept.add(p)
    return kept


def _writable_or_png(fmt):
    """``fmt`` (a sniffed format name) when OpenCV can write it, else ``"png"`` (as ``--format same`` plans for
    files: a GIF's output is a PNG)."""
    from .io import FORMAT_EXTENSIONS, can_write

    return fmt if fmt and can_write(FORMAT_EXTENSIONS.get(fmt, "." + fmt)) else "png"


def _stdout_is_terminal() -> bool:
    try:
        return sys.stdout is not None and sys.stdout.isatty()
    except (AttributeError, ValueError, OSError):  # replaced or closed: not a terminal
        return False


def _after(planned, position, path):
    """The planned output after ``path`` (a streaming ``process`` makes it next), else ``path``; ``position``:
    each planned output's index (a lookup, not a scan: an input may have many thousands)."""
    k = position.get(path, -1)
    return planned[k + 1] if 0 <= k < len(planned) - 1 else path


def _write_with_files(path, blob, files, overwrite, input_real, output_real, resuming=False) -> bool:
    """Write the side files, then the image, each atomically; if any write fails, remove the side files written
    (and, where they replaced an earlier output's, that output's image: the input leaves no output).

    The image is written last, so a side file without its image is what an interrupted run left: a
    resumed run (``resuming``, ``--skip-existing``) replaces it; otherwise it is an existing output, named.
    Returns False when, resuming, the image appeared while this one was made (another run writing the same
    outputs got there first): it is skipped, and the side files stay (the same bytes as that run's when both
    runs are the same command; augment without --seed draws a seed per run)."""
    from .io import OUTPUT_EXISTS, display, write_atomic

    done = []
    replaced = False  # a side file of an earlier run's output was replaced: its image must not outlive a failure
    try:
        for extra, data in files.items():
            extra = os.fspath(extra)
            if output_real(extra) in input_real:
                raise StnError(f"refusing to write onto an input file ({display(extra)})")
            try:
                existed = os.path.lexists(extra)
                write_atomic(extra, data, overwrite=overwrite or resuming)
                replaced = replaced or existed
            except ImageWriteError as e:  # write_atomic's own refusal of an existing file, named
                if str(e) != OUTPUT_EXISTS:
                    e.stntool_path = extra  # the file that failed, named in the input's error
                    raise
                raise ImageWriteError(f"{OUTPUT_EXISTS}: {display(extra)}") from None
            done.append(extra)
        try:
            write_atomic(path, blob, overwrite=overwrite)
        except ImageWriteError as e:
            if str(e) != OUTPUT_EXISTS:
                raise
            if resuming:
                return False
            raise ImageWriteError(f"output {display(path)} exists (use --overwrite or --skip-existing)") from None
    except BaseException:
        # the side files written go; so does the image they replaced the side files of (an earlier run's, with
        # --overwrite): an image without its labels or mask would pass for a complete output
        for extra in done + ([path] if replaced and os.path.isfile(path) else []):
            try:
                os.unlink(extra)
            except OSError:
                pass
        raise
    return True


def _wind_down(interrupt, pending, report_once):
    """After Ctrl-C: record the outputs of an item stopped part-way in this thread (``interrupt.stntool_records``),
    cancel the items not started, and record those running as they stop (each at its next output)."""
    done = getattr(interrupt, "stntool_records", None)
    if done:
        from concurrent.futures import Future

        part = Future()
        part.set_result(("interrupted", done))  # recorded, not counted as an input done
        try:
            report_once(part)
        except Exception:  # noqa: BLE001
            pass
    for f in pending:
        f.cancel()
    for f in pending:  # let running items finish their atomic write, record them
        if not f.cancelled():
            try:
                report_once(f)
            except Exception:  # noqa: BLE001
                pass
    pending.clear()


def _remove_unrecorded(pending, keep: bool = False) -> int:
    """After a manifest write failed: remove the outputs (and the files beside them) of the finished items'
    records that were not written to the manifest (``pending``: the futures not yet fully reported, each with
    its ``stntool_item``), unless ``keep``; returns how many outputs that is."""
    from .io import sigint_deferred

    count = 0
    for fut in pending:
        if fut.cancelled():
            continue
        try:
            _, records = fut.result()
        except BaseException:  # noqa: BLE001 - an item that raised wrote nothing it kept
            continue
        files = getattr(getattr(fut, "stntool_item", None), "written", None) or {}
        for rec in records[getattr(fut, "stntool_reported", 0):]:
            if rec["status"] == "ok" and rec["output"] in files:
                if not keep:
                    with sigint_deferred():
                        _remove(files[rec["output"]])
                count += 1
    return count


class _ManifestError(Exception):
    """Writing a manifest line failed (full disk, I/O error)."""


class _InlineExecutor:
    """Runs each task in the calling thread when it is submitted (one worker: no pool, no thread hop)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        fut = Future()
        fut.set_running_or_notify_cancel()
        try:
            fut.set_result(fn(*args))
        except BaseException as e:  # noqa: BLE001 - re-raised by result(), like a pool
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            fut.set_exception(e)
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def _set_opencv_threads(n: int):
    """Set OpenCV's threads to ``n``; returns the setting before, or None when OpenCV cannot be set (a
    thread-count hint must never break a run).

    A batch of several worker threads gives OpenCV each worker's share of the CPUs, as numba's, and sets the
    earlier value back after it. OpenCV's own pool is one for the process: with every CPU already running a
    worker, its parallel loops (resize, morphology, warps) only add threads, and its workers spin for a while
    after each loop, on CPUs the batch's workers need. ``stntool rectify`` over 100 scans on two cores,
    ``-j 2``: 6.07 s instead of 6.36-6.55 (alternated runs)."""
    try:
        import cv2

        before = cv2.getNumThreads()
        cv2.setNumThreads(n)
        return before
    except Exception:  # noqa: BLE001
        return None


def _quiet_stdout():
    """After a broken pipe on stdout: point fd 1 at /dev/null so the interpreter's final flush is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def run_batch(items, process, *, jobs: int = 2, backend: str = "cpu", overwrite: bool = False,
              skip_existing: bool = False, fmt: str = "same", quality=None, max_pixels: int | None = None,
              exif: bool = True, manifest: Manifest | None = None, quiet: bool = False, stdin_bytes=None,
              command: str = "stntool", progress: bool | None = None, kernels=None) -> Summary:
    """Process ``items`` (planned by :func:`plan_outputs`) with ``process(image, item)``.

    ``process`` receives the decoded image (see :func:`stntool.io.decode_image`) and the
    :class:`Item`, and returns one :class:`Output` or an iterable of them (a generator streams them:
    each is encoded and written before the next is made, as the outputs of a list are written in
    order; either way a failure part way removes the files the input wrote before it: a failed input
    leaves no output);
    raising a :class:`~stntool.errors.StnError` fails that item (its line gets ``item.fields``). Items run on
    ``jobs`` threads (one: in the calling thread); with the CPU backend each thread gets an equal
    share of numba's threads. Records are written to ``manifest`` in input order as soon as they are
    known, and the manifest is closed at the end. Errors (and, unless ``quiet``, warnings and the
    summary line) go to stderr as ``stntool: error: PATH: reason``. A progress bar is shown when
    ``progress`` (default: stderr is a terminal and not ``quiet``).

    Unless ``backend`` is ``"numpy"``, the first image to reach ``process`` installs
    :mod:`stntool._compile_notice`: seconds spent compiling kernels during the batch are reported
    in :attr:`Summary.compile_seconds` and left out of the summary's rate, and when the
    first-compile line is on (the command line, :func:`stntool.set_compile_notice`) it is written
    like the other messages (dropped with ``quiet``).

    ``kernels(item)``, when given, returns the ``(family, mode, padding)`` of the CPU kernels the
    item's image will run through (``[("affine", "bilinear", "zeros")]``; empty when unknown). With
    it, a first run compiles missing kernel signatures in a second process while this one compiles
    the others (:mod:`stntool._compile_ahead`: dtypes predicted from the first inputs' headers;
    nothing happens when everything is cached, with ``STNTOOL_COMPILE_AHEAD=0``, one CPU or a
    backend other than ``"cpu"``); time spent waiting for it counts as compile time. Outputs are
    the same with and without it.

    Ctrl-C (``KeyboardInterrupt``) stops submitting; running items finish their atomic writes and
    are recorded; the summary says how many were not done and ``exit_code`` is 130. A manifest that
    cannot be written stops the batch (``exit_code`` 1). A closed stdout (``--manifest - | head``)
    stops it quietly (``exit_code`` 1).
    """
    from .io import STDERR_LOCK

    # Python's own stderr writes (warnings, prints, the progress bar, these messages) go to a copy
    # of fd 2 for the whole batch, so a decoder's fd-2 capture in another thread never takes them.
    with STDERR_LOCK.python_stderr_kept():
        return _run(items, process, jobs=jobs, backend=backend, overwrite=overwrite, skip_existing=skip_existing,
                    fmt=fmt, quality=quality, max_pixels=max_pixels, exif=exif, manifest=manifest, quiet=quiet,
                    stdin_bytes=stdin_bytes, command=command, progress=progress, kernels=kernels)


def _run(items, process, *, jobs, backend, overwrite, skip_existing, fmt, quality, max_pixels, exif, manifest, quiet,
         stdin_bytes, command, progress, kernels) -> Summary:
    from concurrent.futures import ThreadPoolExecutor

    from . import _compile_notice
    from ._interrupts import ignore_sigint
    from .io import DEFAULT_MAX_PIXELS, STDERR_LOCK, display, sigint_deferred

    items = list(items)
    output_real = _OutputReal()  # each folder resolved once, for the inputs and the outputs
    input_real = _real_paths(items, output_real)
    opts = dict(overwrite=overwrite, skip_existing=skip_existing, fmt=fmt, quality=quality, exif=exif,
                max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels, stdin_bytes=stdin_bytes,
                input_real=input_real, output_real=output_real, stop=threading.Event())
    summary = Summary(command=command, total=len(items), outputs=0)

    bar = None
    if progress is None:
        progress = not quiet and sys.stderr.isatty()
    if progress:
        from tqdm import tqdm

        try:
            sized = min(os.get_terminal_size(sys.stderr.fileno())) > 0
        except (OSError, ValueError):
            sized = False
        # a terminal that reports a 0x0 size (fresh pseudo-terminals, some CI runners) would hide the bar
        interval = tqdm.monitor_interval
        tqdm.monitor_interval = 0  # no monitor thread for this bar (drawn only from this thread); others keep theirs
        try:
            bar = tqdm(total=len(items), file=sys.stderr, unit="img", leave=False,
                       **({"dynamic_ncols": True} if sized else {"ncols": 80, "nrows": 24}))
        finally:
            tqdm.monitor_interval = interval

    def message(msg):
        if bar is not None:
            with STDERR_LOCK:
                bar.write(msg, file=sys.stderr)
        else:
            say(msg)

    if backend != "numpy":
        user_process = process

        def process(img, item):  # noqa: F811 - the same function, with the compile clock running
            _compile_notice.install()  # numba is loaded by now or by the call below
            return user_process(img, item)

    compiling_before = _compile_notice.compile_seconds()
    started = time.perf_counter()
    # Never more workers than inputs: one image keeps all of numba's threads and needs no pool.
    n_jobs = max(1, min(jobs, len(items)))
    per_thread = max(1, (os.cpu_count() or 1) // n_jobs)
    local = threading.local()

    def task(item):
        if not getattr(local, "ready", False):
            local.ready = True
            if n_jobs > 1 and backend == "cpu":
                try:
                    import numba

                    numba.set_num_threads(min(per_thread, numba.config.NUMBA_NUM_THREADS))
                except Exception:  # noqa: BLE001 - a thread-count hint must never break a run
                    pass
        return _records_for(item, process, opts)

    def report_once(fut):
        """Report a finished item's records, each exactly once, even when Ctrl-C interrupts the reporting.

        The future itself counts how many of its records were reported (ids of freed futures are
        reused, so a table of ids would drop records); a record's line, its manifest write and the
        count happen with Ctrl-C held back, so an interrupted report resumes where it stopped.
        """
        status, records = fut.result()
        for k in range(getattr(fut, "stntool_reported", 0), len(records)):
            rec = records[k]
            msg = None
            if rec["status"] == "error" and not rec.get("removed"):  # one line per failed input
                msg = f"stntool: error: {display(rec['input'])}: {rec['error']}"
            elif rec.get("warning") and not quiet and (k == 0 or records[k - 1].get("warning") != rec["warning"]):
                msg = f"stntool: warning: {display(rec['input'])}: {rec['warning']}"  # once per input
            with sigint_deferred():
                if msg is not None:
                    message(msg)
                if manifest is not None:
                    try:
                        manifest.write(rec)
                    except BrokenPipeError:
                        raise
                    except OSError as e:
                        raise _ManifestError(e) from None
                fut.stntool_reported = k + 1
        if not getattr(fut, "stntool_counted", False):
            with sigint_deferred():
                fut.stntool_counted = True
                summary.ok += status == "ok"
                summary.skipped += status == "skipped"
                summary.failed += status == "error"
                summary.outputs += sum(r["status"] == "ok" for r in records)
            if bar is not None:
                with STDERR_LOCK:
                    bar.update(1)

    pool = _InlineExecutor() if n_jobs == 1 else ThreadPoolExecutor(max_workers=n_jobs,
                                                                       thread_name_prefix="stntool-batch")
    opencv_before = _set_opencv_threads(per_thread) if n_jobs > 1 else None
    pending = collections.deque()
    window = 2 * n_jobs + 2
    notices = _compile_notice.lines_to(None if quiet else message)  # through the progress bar
    notices.__enter__()
    ahead = None
    ignoring = None
    try:
        try:
            if kernels is not None and backend == "cpu":
                from . import _compile_ahead  # the second compiling process starts before the first decode

                ahead = _compile_ahead.start(items, kernels, backend, stdin_bytes, skip_existing)
            # A future leaves `pending` only after all its records are reported (report_once resumes
            # where an interrupt stopped it), so every finished output is recorded exactly once.
            for item in items:
                if n_jobs == 1:  # the item runs here, inside submit: Ctrl-C stops it there (stntool_records)
                    pending.append(pool.submit(task, item))
                else:  # a Ctrl-C inside submit (a worker thread starting) must not lose a queued item's records
                    with sigint_deferred():
                        pending.append(pool.submit(task, item))
                pending[-1].stntool_item = item
                while len(pending) >= window or (pending and pending[0].done()):
                    report_once(pending[0])
                    pending.popleft()
            while pending:
                report_once(pending[0])
                pending.popleft()
        except KeyboardInterrupt as e:
            # stopping: a further Ctrl-C is let go (until the summary line) while items running in other threads
            # stop after the output they are writing and every file written gets its record
            ignoring = ignore_sigint()
            opts["stop"].set()
            summary.interrupted = True
            try:
                with sigint_deferred():
                    _wind_down(e, pending, report_once)
            except KeyboardInterrupt:
                pass  # one that came before the line above: stopping already
        except (BrokenPipeError, _ManifestError):
            raise  # (below)
        except Exception:
            # an error that is not an input's (a bug in ``process``: raised by the item that hit it, which left no
            # output): the other items stop after the output they are writing, and what they wrote is recorded
            # before the error goes on, as with jobs=1, where no other item had started
            opts["stop"].set()
            pool.shutdown(wait=True, cancel_futures=True)
            try:
                for fut in list(pending):
                    if fut.cancelled() or fut.exception() is not None:
                        continue
                    report_once(fut)
                    pending.remove(fut)
            except Exception:  # noqa: BLE001 - the records cannot be written either: their outputs go
                _remove_unrecorded(pending, keep=overwrite)
            raise
    except BrokenPipeError:
        pool.shutdown(wait=True, cancel_futures=True)
        _quiet_stdout()
        summary.stopped = True
    except _ManifestError as e:
        # the records cannot be kept: stop; the outputs recorded stay, those written without a record (this one's,
        # the running items') are removed, so a rerun with --skip-existing writes them again, with their records
        # With --overwrite they stay: each replaced an earlier file, which removing it would lose too; a rerun
        # with --overwrite writes them again
        opts["stop"].set()  # running items stop after the output they are writing
        pool.shutdown(wait=True, cancel_futures=True)
        unrecorded = _remove_unrecorded(pending, keep=overwrite)
        if bar is not None:
            bar.close()
            bar = None
        where = "stdout" if manifest.to_stdout else display(manifest.path)
        outputs = f"{unrecorded} output{'s' * (unrecorded != 1)} written without a record"
        if overwrite:
            advice = f"{outputs + ' kept; ' if unrecorded else ''}finish by running it again"
        else:
            advice = (f"{outputs + ' removed; ' if unrecorded else ''}finish with --skip-existing"
                      f"{'' if manifest.to_stdout else ' --manifest-append'}")
        say(f"stntool: error: cannot write manifest {where}: {e.args[0].strerror or e.args[0]}; stopped ({advice})")
        try:
            manifest.close()
        except OSError:
            pass
        if manifest.to_stdout:
            _quiet_stdout()
        summary.stopped = True
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if ignoring is not None and sys.exc_info()[0] is not None:  # leaving with an error: Ctrl-C as before
            ignoring()
            ignoring = None
        if opencv_before is not None:
            _set_opencv_threads(opencv_before)
        if ahead is not None:
            ahead.close()
        notices.__exit__(None, None, None)
        if bar is not None:
            bar.close()
        if manifest is not None and manifest.file is not None:
            try:
                manifest.close()
            except OSError as e:
                say(f"stntool: error: cannot write manifest {display(manifest.path)}: {e.strerror or e}")
                summary.manifest_failed = True

    summary.elapsed = time.perf_counter() - started
    summary.compile_seconds = _compile_notice.compile_seconds() - compiling_before
    if not summary.stopped and (not quiet or summary.interrupted):
        say(summary.line())
    if ignoring is not None:
        ignoring()  # Ctrl-C as before
    return summary
