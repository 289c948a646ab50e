"""``manage.py create_api_key --name shop --scopes read,write``: prints the new key once."""
from django.core.management.base import BaseCommand, CommandError

from crm.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for an integration and print it (only its hash is stored)."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True, help="Who uses the key, e.g. 'web shop'.")
        parser.add_argument("--scopes", default="read", help="Comma-separated: read, write, admin.")

    def handle(self, *args, name: str, scopes: str, **options):
        try:
            api_key, raw_key = api_key_create(name=name, scopes=scopes.split(","))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stderr.write(f"Created API key {api_key.prefix}… '{api_key.name}' with scopes {','.join(api_key.scopes)}.")
        self.stderr.write("Store it now; it cannot be shown again:")
        self.stdout.write(raw_key)
