"""An example batchq user package: a retail registry imported in stage order.

The entities and their execution order are those of the registry batch API.

``retail_registry.types`` declares the batch type ``retail-registry-import``;
batchq registers it through this package's ``batchq.types`` entry point (or
``BATCHQ_TYPES=retail_registry.types``).
"""
