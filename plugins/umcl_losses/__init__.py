"""First-party contrastive losses: ``clip``, ``itl`` (image-text-label) and ``soft`` (MedCLIP-style)."""
