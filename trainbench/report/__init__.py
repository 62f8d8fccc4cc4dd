"""The report pages (Markdown, HTML) of one or more runs."""

__all__ = [
    "pages",
    "reproduce",
]
