"""The /ship command: its verbs, how they find the repository, build and stage, and answers."""
