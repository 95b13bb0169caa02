"""The database server seam: ``client`` (the server's command-line tools: queries, dumps, loads),
``sql`` (quoting and names), ``load`` (restoring a database), ``grants`` (restoring users and
grants). Plain Python: imports neither Django nor the apps' Django modules; callers in ``jobs``
pass the server (``jobs.mysql.server``) and the accounts (``Account.owners()``) in."""
