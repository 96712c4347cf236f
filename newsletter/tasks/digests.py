"""Tasks of digest delivery (trigger, fan-out, drain, reconcile)."""
