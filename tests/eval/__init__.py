"""Tests for the offline evaluation loaders and metrics."""
