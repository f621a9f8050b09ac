"""Process-wide facts that the command line sets before any kernel module is imported."""

#: True in a process started by the ``stntool`` command (nothing but stntool runs there).
cli_process = False

#: True when a first compile of a kernel should be announced on stderr (the command line's default;
#: library users call :func:`stntool.set_compile_notice`). See :mod:`stntool._compile_notice`.
compile_notice = False

#: The standard streams (``"stdin"``, ``"stdout"``, ``"stderr"``) the command line found closed (a shell's ``>&-``)
#: and gave ``/dev/null``: ``-o -`` or ``--manifest -`` would write into nothing.
closed_streams = frozenset()
