from cli_helpers import cli_run, run  # noqa: F401  (fixtures)
