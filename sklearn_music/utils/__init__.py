"""Utilities: estimator discovery and validation helpers."""
