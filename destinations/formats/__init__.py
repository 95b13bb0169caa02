"""The backup formats on a destination, one package each: ``native`` (Backupsite's own) and
``cpanel`` (cPanel account archives), with ``ownership`` (who owns what a restore writes),
shared by both.

Plain Python: nothing here imports Django or the apps' models. The jobs layer calls the formats
and owns the database.
"""
