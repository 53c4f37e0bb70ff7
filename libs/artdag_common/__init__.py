"""Code shared by every artdag service: settings, subjects, schemas, ids, storage."""

__version__ = "0.1.0"
