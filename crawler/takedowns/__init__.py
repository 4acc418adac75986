"""Takedown requests: from an alert to a report, sent, and re-checked until the content is gone."""
