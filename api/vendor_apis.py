"""The five vendor batch APIs, each a thin adapter over batchq's service layer.

| module | API | mounted at |
|---|---|---|
| ``api.camunda`` | the Camunda 7 batch REST API | ``/engine-rest`` |
| ``api.batch_process_api`` | the batch-process API | ``/systemtools/v1`` |
| ``api.media_archive`` | the media-archive batch API | ``/media-archive/batches/`` |
| ``api.registry_api`` | the registry batch API | ``/registry-api/batch`` |
| ``api.crm_batch_task`` | the CRM BatchTask API | ``/api/v1/BatchTask`` |

docs/vendor-apis/ has a page per API: what maps to what, what is not supported.
"""

from __future__ import annotations

from flask import Flask
from flask_smorest import Api


def register_vendor_apis(app: Flask, api: Api) -> None:
    """Register each vendor API's blueprint and its error shape."""
    from api import batch_process_api, camunda, crm_batch_task, media_archive, registry_api

    for module in (camunda, batch_process_api, media_archive, registry_api, crm_batch_task):
        module.register(app)
        api.register_blueprint(module.blp)
