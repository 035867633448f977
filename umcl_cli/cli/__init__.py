"""The ``umcl`` command line: one module per command."""
