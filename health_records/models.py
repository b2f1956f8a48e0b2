"""Encrypted health archives arrive with the next issue; the app exists so the layout is stable."""
