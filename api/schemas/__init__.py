"""Marshmallow schemas, one module per resource: they parse requests, dump responses and write
the OpenAPI document."""
