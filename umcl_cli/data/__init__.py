"""Manifests, the unified dataset, transforms and dataset resolution."""
