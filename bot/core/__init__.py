"""Pure rules and words: no I/O, no asyncio, no storage."""
