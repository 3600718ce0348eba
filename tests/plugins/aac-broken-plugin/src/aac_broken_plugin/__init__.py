"""aac-broken-plugin: one module per way an installed plugin can break while aac builds its registry."""
