import os
import tempfile

# Tests never write into the developer's ./data: give them their own data folder unless the
# caller chose one (the Makefile does).
os.environ.setdefault("BACKUPSITE_DATA_DIR", tempfile.mkdtemp(prefix="backupsite-test-"))
