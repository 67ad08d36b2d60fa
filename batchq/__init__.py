"""batchq: a distributed batch-job service with exact counts.

The package is the domain core. It imports neither ``api`` nor ``workers``;
they import it.
"""

__version__ = "0.1.0"
