"""The dashboard: its content and its templates."""
