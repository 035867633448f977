"""The one training loop and what it needs: precision, distribution, checkpoints, schedules, logging."""
