"""A loopback stand-in for ftrack's JSON API (`POST <server>/api`), for the operations Pinhole calls.

ftrack's server cannot run here, so the tests talk to this instead. What it accepts follows the client
that defines the wire format, ftrack-python-api (github.com/ftrackhq/ftrack-python,
source/ftrack_api/session.py):

- `SessionAuthentication.__call__`: every request carries `ftrack-user` and `ftrack-api-key` headers;
  `Session.__init__` adds `ftrack-strict-api: true|false`.
- `Session.call`: `POST <server>/api` with `content-type: application/json` and `accept: application/json`,
  the body a JSON list of operations, the answer a JSON list with one result per operation. A failure
  is `{"exception": <name>, "content": <message>}`: with HTTP 200 when strict api is off (Session.call
  looks for "exception" in the body) and with an error status when it is on (raise_for_status).
- `Session.commit`: `create` payloads are `{"action", "entity_type", "entity_key": [primary key values],
  "entity_data": {"__entity_type__": T, <primary key>, <attributes>}}`; `update` payloads carry
  `{"__entity_type__": T, <attribute>: <value>}`. Results are `{"action", "data": <entity>}`.
- `Session._encode` / `Session.entity_reference`: an entity inside entity_data is sent as a reference,
  `{"__entity_type__": T, <primary key attributes>}`.
- `Session._query` and `QueryResult._fetch_more` (query.py): a query answers `{"action": "query",
  "data": [...], "metadata": {"next": {"offset": ...}}}`; the client may append `offset N limit M`, and
  writes ids unquoted (`where location_id is <id>`, Location._get_resource_identifiers).

Exception names other than IntegrityError and ParseError (which ftrack-python-api's own tests and
exceptions name) are this stand-in's choice: AuthenticationError, ValidationError, NotFoundError,
ServerError. A batch is one transaction: if any operation fails, none of its changes are kept.
"""
import copy
import http.server
import json
import re
import threading
import time
import uuid

SERVER_LOCATION_ID = "3a372bde-05bc-11e4-8908-20c9d081909b"  # ftrack_api.symbol.SERVER_LOCATION_ID


class ApiError(Exception):
    """An ftrack-style failure: `{"exception": name, "content": message}`, sent with `status` when strict
    (or `always`: bad credentials, wrong endpoint, injected failures), else with 200."""

    def __init__(self, name, message, status=400, always=False):
        super().__init__(message)
        self.name, self.message, self.status, self.always = name, message, status, always


def _string(value):
    return isinstance(value, str)


def _nullable_string(value):
    return value is None or isinstance(value, str)


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _file_system_type(value):
    return value == "file"


class Schema:
    """What the stand-in knows of one entity type: primary key, attributes with checks, references."""

    def __init__(self, key, attributes, required=(), references=None, creatable=False):
        self.key = key
        self.attributes = attributes  # name -> check(value) -> bool
        self.required = required
        self.references = references or {}  # reference attribute -> (id attribute, target type)
        self.creatable = creatable

    def known(self, name):
        return name in self.attributes or name in self.references


SCHEMAS = {
    "Location": Schema(("id",), {"id": _string, "name": _string}),
    "AssetVersion": Schema(
        ("id",),
        {"id": _string, "version": _integer, "asset_id": _nullable_string, "comment": _nullable_string,
         "thumbnail_id": _nullable_string},
        references={"thumbnail": ("thumbnail_id", "FileComponent")}),
    "FileComponent": Schema(
        ("id",),
        {"id": _string, "name": _string, "version_id": _string, "file_type": _string, "size": _integer,
         "system_type": _file_system_type, "container_id": _nullable_string},
        required=("id", "name", "version_id", "file_type", "size", "system_type"),
        references={"version": ("version_id", "AssetVersion")},
        creatable=True),
    "ComponentLocation": Schema(
        ("id",),
        {"id": _string, "component_id": _string, "location_id": _string, "resource_identifier": _string},
        required=("id", "component_id", "location_id", "resource_identifier"),
        references={"component": ("component_id", "FileComponent"), "location": ("location_id", "Location")},
        creatable=True),
    "Metadata": Schema(
        ("parent_id", "key"),
        {"parent_id": _string, "parent_type": _string, "key": _string, "value": _string},
        required=("parent_id", "parent_type", "key", "value"),
        creatable=True),
}

# Foreign keys that must name an existing entity even when sent as plain ids.
FOREIGN_KEYS = {
    ("FileComponent", "version_id"): "AssetVersion",
    ("ComponentLocation", "component_id"): "FileComponent",
    ("ComponentLocation", "location_id"): "Location",
    ("AssetVersion", "thumbnail_id"): "FileComponent",
}

_VALUE = r'"[^"]*"|\'[^\']*\'|[\w.:-]+'
_CONDITION = re.compile(rf'\s*([\w.]+)\s+(?:is\s+({_VALUE})|in\s*\(\s*((?:{_VALUE})(?:\s*,\s*(?:{_VALUE}))*)\s*\))\s*',
                        re.IGNORECASE)
_AND = re.compile(r"and\s+", re.IGNORECASE)
_QUERY = re.compile(r'^\s*(?:select\s+(?P<select>[\w.]+(?:\s*,\s*[\w.]+)*)\s+from\s+)?(?P<type>\w+)'
                    r'(?:\s+where\s+(?P<where>.+?))?(?:\s+offset\s+(?P<offset>\d+))?(?:\s+limit\s+(?P<limit>\d+))?\s*$',
                    re.IGNORECASE | re.DOTALL)


def _unquote(token):
    return token[1:-1] if token[:1] in "\"'" else token


def parse_query(expression):
    """Parse the query subset into (type, projections or None, [(field, allowed values)], offset, limit)."""
    if not isinstance(expression, str):
        raise ApiError("ParseError", "query expression must be a string")
    match = _QUERY.match(expression)
    if not match or match["type"] not in SCHEMAS:
        raise ApiError("ParseError", f"cannot parse query {expression!r}")
    schema = SCHEMAS[match["type"]]

    def field(name, condition=False):
        # `component.id` (and, in a condition, `component`) means `component_id`.
        head, _, tail = name.partition(".")
        if head in schema.references and (tail == "id" or (condition and not tail)):
            return schema.references[head][0]
        if tail or not schema.known(name):
            raise ApiError("ParseError", f"{match['type']} has no attribute {name!r}")
        return name

    projections = None
    if match["select"]:
        projections = [field(name.strip()) for name in match["select"].split(",")]
    conditions = []
    if match["where"]:
        where, position = match["where"], 0
        while True:  # condition (and condition)*, scanned so quoted values may contain " and ".
            condition = _CONDITION.match(where, position)
            if not condition:
                raise ApiError("ParseError", f"cannot parse condition {where[position:]!r} in {expression!r}")
            name, single, several = condition.groups()
            values = [single] if single is not None else re.findall(_VALUE, several)
            conditions.append((field(name, condition=True), {_unquote(v) for v in values}))
            position = condition.end()
            if position == len(where):
                break
            conjunction = _AND.match(where, position)
            if not conjunction:
                raise ApiError("ParseError", f"expected 'and' at {where[position:]!r} in {expression!r}")
            position = conjunction.end()
    offset = int(match["offset"]) if match["offset"] else 0
    limit = int(match["limit"]) if match["limit"] else None
    return match["type"], projections, conditions, offset, limit


class FtrackStandin:
    """`POST /api` on 127.0.0.1 at a free port, in a daemon thread; `.url`, `.stop()`, a context manager."""

    def __init__(self, user="pinhole", api_key="test-api-key"):
        self.user, self.api_key = user, api_key
        self.requests = []  # (headers with lower-case names, parsed body or raw text) of every request
        self._lock = threading.Lock()
        self._store = {name: {} for name in SCHEMAS}
        self._failures = []  # (status, exception name) per upcoming request
        self._delays = []  # seconds per upcoming request
        self._put("Location", {"id": SERVER_LOCATION_ID, "name": "ftrack.server"})
        standin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                standin._handle(self)

            def do_GET(self):
                self._read_body()
                self.answer(405, {"exception": "ServerError", "content": "only POST /api"})

            def _read_body(self):
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                        body += self.rfile.read(size)
                        self.rfile.readline()
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def answer(self, status, payload):
                body = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # The client gave up (a timeout test); the batch was still applied.

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    # Test helpers.

    def add_version(self, version_id=None):
        """Seed an AssetVersion (Pinhole only attaches to versions; it never creates them)."""
        version_id = version_id or str(uuid.uuid4())
        with self._lock:
            self._put("AssetVersion", {"id": version_id, "version": 1, "asset_id": None, "comment": None,
                                       "thumbnail_id": None})
        return version_id

    def add_component(self, component_id, version_id, name="main", file_type=".mov"):
        """Seed a FileComponent in an existing version, e.g. the source media a review rendition is made from."""
        with self._lock:
            if version_id not in self._store["AssetVersion"]:
                raise ValueError(f"no AssetVersion {version_id}")
            self._put("FileComponent", {"id": component_id, "name": name, "version_id": version_id,
                                        "file_type": file_type, "size": 0, "system_type": "file",
                                        "container_id": None})
        return component_id

    def entities(self, entity_type):
        """Copies of every stored entity of `entity_type`, each with `__entity_type__`."""
        with self._lock:
            return [self._render(entity_type, e) for e in self._store[entity_type].values()]

    def fail_next(self, status, count=1, exception="ServerError"):
        """Answer the next `count` requests with `status` and an exception body, changing nothing."""
        with self._lock:
            self._failures += [(status, exception)] * count

    def delay_next(self, seconds, count=1):
        """Sleep `seconds` before answering each of the next `count` requests (which are still applied)."""
        with self._lock:
            self._delays += [seconds] * count

    # Request handling.

    def _put(self, entity_type, entity, store=None):
        store = self._store if store is None else store
        key = tuple(entity[k] for k in SCHEMAS[entity_type].key)
        store[entity_type][key[0] if len(key) == 1 else key] = entity

    @staticmethod
    def _render(entity_type, entity, projections=None):
        schema = SCHEMAS[entity_type]
        names = list(entity) if projections is None else list(dict.fromkeys(list(schema.key) + projections))
        out = {"__entity_type__": entity_type}
        for name in names:
            if name in schema.references:
                id_name, target = schema.references[name]
                value = entity.get(id_name)
                out[name] = None if value is None else {"__entity_type__": target, "id": value}
            else:
                out[name] = copy.deepcopy(entity.get(name))
        return out

    def _handle(self, handler):
        raw = handler._read_body()
        headers = {name.lower(): value for name, value in handler.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self.requests.append((headers, body))
            delay = self._delays.pop(0) if self._delays else 0
        if delay:
            time.sleep(delay)
        strict = headers.get("ftrack-strict-api", "").lower() == "true"
        try:
            if handler.path.split("?")[0] != "/api":
                raise ApiError("ServerError", f"no such endpoint {handler.path}", 404, always=True)
            with self._lock:
                if self._failures:
                    status, name = self._failures.pop(0)
                    raise ApiError(name, f"injected failure ({status})", status, always=True)
                if headers.get("ftrack-user") != self.user or headers.get("ftrack-api-key") != self.api_key:
                    raise ApiError("AuthenticationError", "The supplied API key is not valid.", 401, always=True)
                result = self._batch(headers, body)
        except ApiError as error:
            status = error.status if strict or error.always else 200
            handler.answer(status, {"exception": error.name, "content": error.message})
            return
        handler.answer(200, result)

    def _batch(self, headers, body):
        """Apply every operation to a copy of the store, and keep the copy only if all succeed."""
        if "application/json" not in headers.get("content-type", ""):
            raise ApiError("ValidationError", "content-type must be application/json (Session.call)")
        if "application/json" not in headers.get("accept", ""):
            raise ApiError("ValidationError", "accept must be application/json (Session.call)")
        if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
            raise ApiError("ValidationError", "the body must be a JSON list of operations")
        store = copy.deepcopy(self._store)
        results = []
        for operation in body:
            action = operation.get("action")
            if action == "query":
                results.append(self._query(store, operation))
            elif action == "create":
                results.append(self._create(store, operation))
            elif action == "update":
                results.append(self._update(store, operation))
            else:
                raise ApiError("ValidationError", f"unsupported action {action!r}")
        self._store = store
        return results

    def _query(self, store, operation):
        entity_type, projections, conditions, offset, limit = parse_query(operation.get("expression"))
        matches = [e for e in store[entity_type].values()
                   if all(e.get(name) is not None and str(e.get(name)) in values for name, values in conditions)]
        end = len(matches) if limit is None else offset + limit
        page = [self._render(entity_type, e, projections) for e in matches[offset:end]]
        return {"action": "query", "data": page,
                "metadata": {"next": {"offset": end if limit and end < len(matches) else None}}}

    def _checked_payload(self, store, operation):
        """Common checks of a create or update payload; returns (type, schema, key values, attributes)."""
        entity_type = operation.get("entity_type")
        schema = SCHEMAS.get(entity_type)
        if schema is None:
            raise ApiError("ValidationError", f"unknown entity type {entity_type!r}")
        data, key = operation.get("entity_data"), operation.get("entity_key")
        if not isinstance(data, dict) or not isinstance(key, list):
            raise ApiError("ValidationError", "entity_data must be an object and entity_key a list")
        if data.get("__entity_type__") != entity_type:
            raise ApiError("ValidationError",
                           f"entity_data.__entity_type__ {data.get('__entity_type__')!r} is not {entity_type!r}")
        if len(key) != len(schema.key):
            raise ApiError("ValidationError", f"{entity_type} entity_key has {len(schema.key)} values: {schema.key}")
        attributes = {}
        for name, value in data.items():
            if name == "__entity_type__":
                continue
            if not schema.known(name):
                raise ApiError("ValidationError", f"{entity_type} has no attribute {name!r}")
            if name in schema.references:
                id_name, target = schema.references[name]
                if not (isinstance(value, dict) and value.get("__entity_type__") == target
                        and set(value) == {"__entity_type__", "id"}):
                    raise ApiError("ValidationError",
                                   f"{entity_type}.{name} must be a {target} reference (Session.entity_reference)")
                if id_name in data and data[id_name] != value["id"]:
                    raise ApiError("ValidationError", f"{entity_type}.{name} and {id_name} disagree")
                name, value = id_name, value["id"]
            elif not schema.attributes[name](value):
                raise ApiError("ValidationError", f"{entity_type}.{name} has an invalid value {value!r}")
            attributes[name] = value
        for name, value in attributes.items():
            target = FOREIGN_KEYS.get((entity_type, name))
            if target and value is not None and value not in store[target]:
                raise ApiError("NotFoundError", f"{entity_type}.{name}: no {target} {value!r}")
        return entity_type, schema, (key[0] if len(key) == 1 else tuple(key)), attributes

    def _create(self, store, operation):
        entity_type, schema, key, attributes = self._checked_payload(store, operation)
        if not schema.creatable:
            raise ApiError("ValidationError", f"the stand-in does not create {entity_type}")
        missing = [name for name in schema.required if name not in attributes]
        if missing:
            raise ApiError("ValidationError", f"{entity_type} is missing {', '.join(missing)}")
        key_values = [attributes[name] for name in schema.key]
        if key_values != list(operation["entity_key"]):
            raise ApiError("ValidationError", f"entity_key {operation['entity_key']} does not match "
                                              f"entity_data {dict(zip(schema.key, key_values))}")
        if entity_type == "Metadata":
            parent_type = attributes["parent_type"]
            if parent_type not in SCHEMAS or attributes["parent_id"] not in store[parent_type]:
                raise ApiError("NotFoundError", f"Metadata parent: no {parent_type} {attributes['parent_id']!r}")
        if key in store[entity_type]:
            raise ApiError("IntegrityError", f"duplicate {entity_type} {key!r}", 409)
        entity = {name: None for name in schema.attributes} | attributes
        self._put(entity_type, entity, store)
        return {"action": "create", "data": self._render(entity_type, entity)}

    def _update(self, store, operation):
        entity_type, schema, key, attributes = self._checked_payload(store, operation)
        entity = store[entity_type].get(key)
        if entity is None:
            raise ApiError("NotFoundError", f"no {entity_type} {key!r} to update", 404)
        if any(name in schema.key for name in attributes):
            raise ApiError("ValidationError", f"cannot update the primary key of {entity_type}")
        entity.update(attributes)
        return {"action": "update", "data": self._render(entity_type, entity)}
