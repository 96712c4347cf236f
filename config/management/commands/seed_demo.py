"""`manage.py seed_demo`: the demo content of a fresh local run, for both apps in one command.

It lives with the site, above both apps: articles never reaches into newsletter, and `make run`
keeps a single command. Safe to run again: what exists is left alone.
"""

from django.core.management.base import BaseCommand

from articles.demo import articles_demo_seed
from newsletter.demo import newsletter_demo_seed


class Command(BaseCommand):
    help = "Create demo topics, authors, published articles and the demo newsletter (idempotent)."

    def handle(self, *args, **options) -> None:
        created = articles_demo_seed()
        newsletter_demo_seed()
        self.stdout.write(self.style.SUCCESS(f"Demo content ready ({created} articles new)."))
