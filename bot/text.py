"""Text for Slack: escape what people and GitHub wrote before it goes into mrkdwn."""


def escape(text: str) -> str:
    """Escape &, < and > so nobody's text can ping <!channel> or forge a link."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
