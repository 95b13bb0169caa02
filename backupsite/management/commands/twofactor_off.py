from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from backupsite import twofactor


class Command(BaseCommand):
    help = "Turn two-factor login off for a user who lost their authenticator app (run on the server)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"there is no user {options['username']!r}")
        twofactor.turn_off(user)
        self.stdout.write(f"Two-factor login is off for {user.username}: the password alone logs them in.")
