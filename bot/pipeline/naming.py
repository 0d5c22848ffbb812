"""Name the person behind an announcement: their display name when known, so no one is pinged
by news of their own doing; a mention when promobot has not learnt the name yet."""

from sqlite_utils import Database

from bot.core.render import person
from storage import people


def said(db: Database, user: str) -> str:
    """Return how a channel post names `user` (mrkdwn)."""
    return person(user, people.names_of(db, [user]))
