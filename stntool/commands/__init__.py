"""Click commands, one module each (imported by stntool.cli)."""
