"""Dual encoder, projections, logit scale, prompt learner, checkpoints."""
