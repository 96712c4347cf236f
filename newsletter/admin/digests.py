"""Admin for digests and their progress."""
