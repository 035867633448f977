"""First-party dataset plugins (entry-point group ``umcl.datasets``), e.g. the generated ``synthetic``."""
