"""Process-wide facts that the command line sets before any kernel module is imported."""

#: True in a process started by the ``stntool`` command (nothing but stntool runs there).
cli_process = False
