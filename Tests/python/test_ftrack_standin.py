"""The ftrack API stand-in accepts what ftrack-python-api's Session.commit sends and rejects what ftrack would.

Requests are encoded as Session.call does (json.dumps with sort_keys, entity references as
Session.entity_reference makes them) so that the stand-in's checks are themselves checked."""
import json
import uuid

import pytest
import requests

from ftrack_standin import SERVER_LOCATION_ID, FtrackStandin


@pytest.fixture
def ftrack():
    with FtrackStandin() as standin:
        yield standin


def call(standin, batch, strict=False, api_key="test-api-key", timeout=5):
    """POST a batch the way Session.call and SessionAuthentication do."""
    headers = {"content-type": "application/json", "accept": "application/json",
               "ftrack-user": "pinhole", "ftrack-api-key": api_key,
               "ftrack-strict-api": "true" if strict else "false"}
    return requests.post(standin.url + "/api", data=json.dumps(batch, sort_keys=True), headers=headers,
                         timeout=timeout)


def create(entity_type, key, data):
    """A create payload as Session.commit builds it: type duplicated in entity_data, primary key added."""
    return {"action": "create", "entity_type": entity_type, "entity_key": list(key.values()),
            "entity_data": {"__entity_type__": entity_type, **key, **data}}


def update(entity_type, entity_id, attribute, value):
    return {"action": "update", "entity_type": entity_type, "entity_key": [entity_id],
            "entity_data": {"__entity_type__": entity_type, attribute: value}}


def reference(entity_type, entity_id):
    return {"__entity_type__": entity_type, "id": entity_id}


def rendition_batch(version_id, component_id, location_id=SERVER_LOCATION_ID):
    """What registering one review rendition takes: component, its location, metadata, thumbnail."""
    return [
        create("FileComponent", {"id": component_id},
               {"name": "ftrackreview-mp4", "version_id": version_id, "file_type": ".mp4", "size": 123456,
                "system_type": "file"}),
        create("ComponentLocation", {"id": str(uuid.uuid4())},
               {"component": reference("FileComponent", component_id),
                "location": reference("Location", location_id), "resource_identifier": component_id}),
        create("Metadata", {"parent_id": component_id, "key": "ftr_meta"},
               {"parent_type": "FileComponent", "value": json.dumps({"frameIn": 0, "frameOut": 48, "frameRate": 24})}),
        update("AssetVersion", version_id, "thumbnail_id", component_id),
    ]


def test_a_rendition_is_registered_and_can_be_queried_back(ftrack):
    """The whole happy path Pinhole takes, ending with the queries ftrack-python-api itself issues."""
    version = ftrack.add_version()
    ftrack.add_component("source-1", version)
    component = str(uuid.uuid4())
    response = call(ftrack, rendition_batch(version, component))
    assert response.status_code == 200, response.text
    results = response.json()
    assert [r["action"] for r in results] == ["create", "create", "create", "update"]
    assert results[1]["data"]["component_id"] == component
    assert ftrack.entities("AssetVersion")[0]["thumbnail_id"] == component

    # Location._get_resource_identifiers writes ids unquoted; QueryResult appends offset/limit.
    query = (f"select component_id, resource_identifier from ComponentLocation where location_id is "
             f"{SERVER_LOCATION_ID} and component_id in ({component}, other) offset 0 limit 100")
    found = call(ftrack, [{"action": "query", "expression": query},
                          {"action": "query", "expression": f'FileComponent where version_id is "{version}"'}]).json()
    assert found[0]["data"] == [{"__entity_type__": "ComponentLocation", "id": results[1]["data"]["id"],
                                 "component_id": component, "resource_identifier": component}]
    assert found[0]["metadata"] == {"next": {"offset": None}}
    assert sorted(e["name"] for e in found[1]["data"]) == ["ftrackreview-mp4", "main"]
    assert found[1]["data"][0]["system_type"] == "file"

    headers, body = ftrack.requests[0]
    assert headers["ftrack-api-key"] == "test-api-key" and body[0]["action"] == "create"


def test_bad_credentials_are_401_and_change_nothing(ftrack):
    """A wrong key must not be mistaken for success, in strict mode or not."""
    version = ftrack.add_version()
    for strict in (False, True):
        response = call(ftrack, rendition_batch(version, str(uuid.uuid4())), strict=strict, api_key="wrong")
        assert response.status_code == 401
        assert response.json()["exception"] == "AuthenticationError"
    assert ftrack.entities("FileComponent") == [] and ftrack.entities("AssetVersion")[0]["thumbnail_id"] is None


@pytest.mark.parametrize("mutate, exception", [
    (lambda batch: batch[0]["entity_data"].update({"__entity_type__": "Component"}), "ValidationError"),
    (lambda batch: batch[0]["entity_data"].pop("__entity_type__"), "ValidationError"),
    (lambda batch: batch[0].update({"entity_key": ["not-the-id"]}), "ValidationError"),
    (lambda batch: batch[0]["entity_data"].pop("size"), "ValidationError"),
    (lambda batch: batch[0]["entity_data"].update({"version_id": "no-such-version"}), "NotFoundError"),
    (lambda batch: batch[1]["entity_data"].update({"component": batch[0]["entity_key"][0]}), "ValidationError"),
    (lambda batch: batch[2].update({"entity_key": list(reversed(batch[2]["entity_key"]))}), "ValidationError"),
    (lambda batch: batch[3]["entity_data"].update({"thumbnail_id": "no-such-component"}), "NotFoundError"),
], ids=["wrong-type", "no-type", "key-mismatch", "missing-size", "unknown-version", "bare-id-reference",
        "metadata-key-order", "unknown-thumbnail"])
def test_malformed_batches_are_rejected_whole(ftrack, mutate, exception):
    """Each mistake fails the batch (HTTP 200 + exception without strict api, 400 with it) and keeps nothing."""
    version = ftrack.add_version()
    batch = rendition_batch(version, str(uuid.uuid4()))
    mutate(batch)
    lenient = call(ftrack, batch)
    assert lenient.status_code == 200 and lenient.json()["exception"] == exception, lenient.text
    strict = call(ftrack, batch, strict=True)
    assert strict.status_code == 400 and strict.json()["exception"] == exception
    assert ftrack.entities("FileComponent") == [] and ftrack.entities("Metadata") == []


def test_duplicate_is_integrity_error_and_rolls_back_the_batch(ftrack):
    """A retried registration shows up as IntegrityError, and the new entities before it are not kept."""
    version = ftrack.add_version()
    ftrack.add_component("existing", version)
    fresh = create("FileComponent", {"id": "fresh"}, {"name": "a", "version_id": version, "file_type": ".mp4",
                                                     "size": 1, "system_type": "file"})
    duplicate = create("FileComponent", {"id": "existing"}, {"name": "b", "version_id": version,
                                                            "file_type": ".mp4", "size": 1, "system_type": "file"})
    response = call(ftrack, [fresh, duplicate], strict=True)
    assert response.status_code == 409 and response.json()["exception"] == "IntegrityError"
    assert [e["id"] for e in ftrack.entities("FileComponent")] == ["existing"]


def test_unparsable_query_is_parse_error(ftrack):
    for expression in ("Shot where id is 1", "FileComponent where name like 'x'", "select nope from FileComponent"):
        assert call(ftrack, [{"action": "query", "expression": expression}]).json()["exception"] == "ParseError"


def test_injected_failures_and_delays(ftrack):
    """fail_next answers its status without applying anything; delay_next makes client timeouts happen."""
    version = ftrack.add_version()
    batch = rendition_batch(version, str(uuid.uuid4()))
    ftrack.fail_next(503, count=2)
    assert [call(ftrack, batch).status_code for _ in range(2)] == [503, 503]
    assert ftrack.entities("FileComponent") == []
    assert call(ftrack, batch).status_code == 200
    assert len(ftrack.requests) == 3

    ftrack.delay_next(0.3)
    with pytest.raises(requests.Timeout):
        call(ftrack, [{"action": "query", "expression": "Location where name is ftrack.server"}], timeout=0.1)
