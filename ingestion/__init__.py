"""Reading, validating and loading extracts, and the synthetic extract generator."""
