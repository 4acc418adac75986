"""Notifications: alert → rules → sinks (webhook, e-mail, Telegram bot), delivered through a leased queue.

``rules`` decides which alerts go where, ``render`` writes the words (Korean or English catalogs),
``sinks/`` send, ``dispatcher`` turns new alerts into deliveries and sends them (retries, dead
letter, rate limit with digests), ``service`` is what the command line and the app shell call.
"""
