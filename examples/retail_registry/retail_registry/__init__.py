"""An example batchq user package: the seed 003 retail registry, imported in stage order.

Importing ``retail_registry.types`` registers the batch type
``retail-registry-import``; batchq does that through the ``batchq.batch_types.registry``
entry point of this package (or ``BATCHQ_TYPES=retail_registry.types``).
"""
