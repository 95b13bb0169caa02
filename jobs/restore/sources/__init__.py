"""Reading what a backup holds, for restores and downloads alike: ``native`` (Backupsite's own
backups) and ``cpanel`` (cPanel account archives)."""
