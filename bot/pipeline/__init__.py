"""One transaction per decision: what an event or a person changes, and its outbox rows."""
