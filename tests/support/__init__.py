"""What the tests and `bench/` share: FTP server launchers, cPanel archive builders, homes and
host trees, fakes, the peers' availability, the pytest fixtures, and the page walk's list."""

from pathlib import Path

# The repository's top folder (templates/, manage.py, ...).
REPO = Path(__file__).resolve().parents[2]
