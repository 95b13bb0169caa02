"""Account discovery: host.py reads the server, accounts.py makes the Account table match."""
