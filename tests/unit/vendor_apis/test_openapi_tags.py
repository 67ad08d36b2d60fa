"""The OpenAPI document lists each vendor API's endpoints under that API's own tag."""

from __future__ import annotations

from flask.testing import FlaskClient

TAGS = {"/engine-rest/": "camunda-7-batch-api", "/systemtools/v1/": "batch-process-api",
        "/media-archive/": "media-archive-batch-api", "/registry-api/": "registry-batch-api",
        "/api/v1/": "crm-batchtask-api"}


def test_each_vendor_api_has_its_own_tag(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    tagged: dict[str, set[str]] = {tag: set() for tag in TAGS.values()}
    for path, operations in document["paths"].items():
        prefix = next((p for p in TAGS if path.startswith(p)), None)
        for method, operation in operations.items():
            if method == "parameters":  # the path's own, not an operation
                continue
            if prefix is None:
                assert not set(operation["tags"]) & set(TAGS.values()), path
            else:
                assert operation["tags"] == [TAGS[prefix]], path
                tagged[TAGS[prefix]].add(path)
    assert all(tagged.values()), tagged
    described = {tag["name"]: tag.get("description", "") for tag in document["tags"]}
    assert all("docs/vendor-apis/" in described[tag] for tag in TAGS.values())
    assert len(tagged["camunda-7-batch-api"]) == 9
