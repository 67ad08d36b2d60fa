"""``/batches/{id}/result-file``: download the file a batch's post-batch step produced."""

from __future__ import annotations

import io

from flask import Response, send_file

from api.blueprint import Blueprint
from api.context import current_caller, runtime
from batchq.service import listing
from batchq.service.results import result_file_of

blp = Blueprint("results", __name__, url_prefix="/batches",
                description="Results of batches: the post-batch step's file")


@blp.route("/<batch_id>/result-file")
@blp.response(200, {"type": "string", "format": "binary"},
              content_type="application/octet-stream", description=(
    "The file, with the media type the post-batch step gave it and "
    "Content-Disposition: attachment; filename=..."))
@blp.alt_response(401, description="No credential, or a wrong one")
@blp.alt_response(404, description="No such batch you may read, the batch has not finished, "
                                   "or its post-batch step wrote no file")
def result_file(batch_id: str) -> Response:
    """Download the batch's result file (e.g. a CSV report)"""
    listing.check_access(runtime(), current_caller(), batch_id)
    file = result_file_of(runtime(), batch_id)
    response = send_file(io.BytesIO(file.content), as_attachment=True,
                         download_name=file.filename, max_age=0)
    # Exactly the step's media type: Werkzeug would append a charset to a text/* one.
    response.headers["Content-Type"] = file.media_type
    return response
