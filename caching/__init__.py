"""Plain-Python caches shared by the apps (no Django, no app imports: every layer may use them)."""
