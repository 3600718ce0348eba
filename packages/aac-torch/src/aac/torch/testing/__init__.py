"""Helpers for testing torch algorithms: reference models built in code (see :mod:`.models`)."""
