"""The TUI's modal screens, one module each."""
