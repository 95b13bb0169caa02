"""Where restored data goes: ``home`` (the account's home folder, through ``localfs``, which is
Django-free), ``database`` (the database server) and ``targz`` (the .tar.gz of a download)."""
