"""One module per pipeline stage; each exposes a plain async stage function."""
