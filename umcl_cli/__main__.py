"""``python -m umcl_cli`` (and ``torchrun -m umcl_cli``) run the CLI."""

from umcl_cli.cli.app import main

main()
