"""Pure page parsers: HTML in, records out. No network, no Scrapy, no store."""
