#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "backupsite.settings")
    from backupsite.datadir import secure_process

    # `check` only looks, so that it reports a data folder open to others; every other
    # command (migrate, runpanel, ...) first makes it private.
    secure_process(tighten=sys.argv[1:2] != ["check"])
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
