"""``tasklens demo``: example actors and an app that enqueues them, on Redis or in process."""
