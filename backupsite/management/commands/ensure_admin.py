import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    help = "Create the first admin (staff superuser) when there is none, printing its password once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin")

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        if User.objects.filter(is_staff=True).exists():
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=options["username"], email="", password=password)
        bar = "=" * 64
        self.stdout.write(
            f"{bar}\nCreated the admin user.\n  username: {options['username']}\n  password: {password}\n"
            f"This password is shown only once: note it now, then change it after logging in.\n{bar}"
        )
