"""Admin for newsletters, consent texts and subscriptions."""
