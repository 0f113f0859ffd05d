"""Timeline: the HTTP service, its command line and its dashboard."""

__version__ = "0.1.0"
