"""promobot's core: config, pipeline rules, workflows, clients, relay, CLI and app factory."""
