"""Tasks of the consent flows (confirmation mail, retention)."""
