"""tasklens."""
