"""Executor service: renders plan steps with PyAV, claims before it renders, stores by cid."""
