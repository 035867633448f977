"""umcl: medical image-text-label contrastive pre-training with continuous prompts."""

__version__ = "0.1.0"
