"""Conversation Memory: a memory layer for customer conversations."""

__version__ = "0.1.0"
