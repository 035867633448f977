"""Workflows: one module per job a command runs (pretrain, zero-shot, linear probe, prompt tuning,
retrieval, loading a model for evaluation).

Each returns a typed result (a dataclass whose ``to_record()`` is what ``metrics.json`` holds) and
prints nothing; the command modules in ``umcl_cli/cli`` render results, and notebooks, tests and
benchmarks call these functions directly. Progress bars still come from the layers below.
"""
