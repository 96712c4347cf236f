"""See the modules of this package; import from them directly."""
