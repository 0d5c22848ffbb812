"""Long-running machinery: worker, relay, scheduler, GitHub and Slack clients, sweeps."""
