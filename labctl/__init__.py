"""labctl: bench software for solid-state lithium battery research."""

__version__ = "0.1.0"
