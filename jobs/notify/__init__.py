"""Notifications: which events reach which targets, the outbox, and the senders (Apprise, email)."""
