"""flask-smorest's Blueprint, answering bad input with 400 rather than webargs' 422."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):
    ARGUMENTS_PARSER = _Parser()
