"""Helpers every real-dataset plugin shares: finding the data, checking inputs, splitting by group.

- ``locate.resolve_root``: ``--root``, else ``$UMCL_<NAME>_ROOT``, else ``~/.config/umcl/datasets.yaml``.
- ``checks``: required files, CSV headers, paths that stay inside the root, missing images.
- ``split.group_split``: a seeded split that keeps every group (patient) in one split.
"""
