"""Dataset geometry core: plain Python, no Django."""
