"""Demo newsletter for `seed_demo` (filled in by the consent flow)."""


def newsletter_demo_seed() -> None:
    """Create the demo newsletter and its consent texts once; running again adds nothing."""
