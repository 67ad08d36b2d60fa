"""The Celery side of batchq: the app and thin tasks around ``batchq`` functions."""
