"""Metric and health-score configuration, and the reporting code that reads the marts."""
