"""Restores and downloads of backups, organised as sources x sinks.

Where things go:
* Home files and mailboxes go into the account's home folder (``sinks.home``, written through
  ``sinks.localfs.SafeTree``), over the current files or into a new folder inside it.
* Databases go into the server from settings (``sinks.database``, through ``jobs.dbserver``),
  database users and grants likewise. Only what the account owns by ``ownership``'s rule:
  a backup of ``alice`` may hold ``alice_x_wp`` (dumped before account ``alice_x`` existed);
  asking for it is refused, and a whole-account restore or download skips it with the reason.
* Configuration parts are not applied (``plan.CONFIG_REASON``); downloads include them.
* A download is one .tar.gz (``downloads``, written by ``sinks.targz``).

A client restores and downloads only what the account's uid could read on the live system
(``ownership.ReadCheck``); the rest is skipped with the reason. An admin restores everything.

The modules: ``request`` (validating what was asked, queueing it), ``plan`` (the request and
what it means in engine terms), ``outcome`` (what a run did; ``RestoreRefused``), ``runner``
(running a restore), ``downloads`` (preparing, offering and expiring downloads), ``sources``
(reading what a native backup or a cPanel archive holds, for restores and downloads alike) and
``sinks`` (home folder, database server, .tar.gz).

This package exports nothing itself (import the modules): ``sinks.localfs`` is Django-free and
imported by the native format, so importing the package must not load Django.
"""
