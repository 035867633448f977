"""Zero-shot, prompt tuning, linear probe, retrieval, their metrics and reports."""
