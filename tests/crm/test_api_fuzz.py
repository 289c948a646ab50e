"""Schema-driven fuzzing: no input to any operation of the OpenAPI schema yields a 5xx.

For every (path, method) in the generated schema, hypothesis builds path parameters, query
strings and JSON bodies from the operation's declared parameters and request-body properties,
mixing well-typed values with arbitrary JSON. Deterministic (``derandomize``) and bounded.
"""
import json
import string

import pytest
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import CustomerFactory, ItemFactory

pytestmark = pytest.mark.django_db

SCHEMA = None


def _schema() -> dict:
    global SCHEMA
    if SCHEMA is None:
        SCHEMA = json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))
    return SCHEMA


def _resolve(schema: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node or {}


text = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | text
anything = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
                        max_leaves=8)


def _typed(schema: dict, node: dict, depth: int = 0):
    node = _resolve(schema, node)
    if depth > 3:
        return anything
    kind = node.get("type")
    if "enum" in node:
        good = st.sampled_from([v for v in node["enum"] if v is not None] or [None])
    elif kind == "array":
        good = st.lists(_typed(schema, node.get("items", {}), depth + 1), max_size=3)
    elif kind == "object" and "properties" in node:
        good = st.fixed_dictionaries({}, optional={k: _typed(schema, v, depth + 1)
                                                   for k, v in node["properties"].items()})
    elif kind == "integer":
        good = st.integers(-5, 10**12)
    elif kind == "number":
        good = st.floats(allow_nan=False, allow_infinity=False) | st.decimals(allow_nan=False, places=3).map(str)
    elif kind == "boolean":
        good = st.booleans()
    elif kind == "string":
        good = (st.sampled_from(["c1", "s1", "2024-05-01T10:00:00Z", "https://x.example/a", "DE", "a@b.co"])
                | text)
    else:
        good = anything
    return good | anything if depth else good


def _operations():
    schema = _schema()
    for path, methods in sorted(schema["paths"].items()):
        if not path.startswith("/api/v1/"):
            continue
        for method, op in sorted(methods.items()):
            if method in ("get", "post", "put", "patch", "delete"):
                yield path, method, op


OPERATIONS = list(_operations())
SAFE_PATH = st.text(alphabet=string.ascii_letters + string.digits + "-_.~%", min_size=1, max_size=12)


@st.composite
def requests(draw, path: str, method: str, op: dict):
    schema = _schema()
    url = path
    query = {}
    for param in op.get("parameters", []):
        if param["in"] == "path":
            value = draw(st.sampled_from(["c1", "s1", "1"]) | SAFE_PATH | st.integers(0, 10**6).map(str))
            url = url.replace("{" + param["name"] + "}", value)
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = str(draw(_typed(schema, param.get("schema", {}))))[:50]
    body = None
    content = op.get("requestBody", {}).get("content", {}).get("application/json")
    if content:
        body = draw(_typed(schema, content["schema"]) | anything)
    return url, query, body


@pytest.mark.parametrize("path, method, op", OPERATIONS, ids=[f"{m.upper()} {p}" for p, m, op in OPERATIONS])
def test_no_input_yields_a_server_error(make_client, path, method, op):
    client = make_client("admin")
    client.raise_request_exception = False
    CustomerFactory(external_id="c1")
    ItemFactory(sku="s1")

    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(requests(path, method, op))
    def run(request):
        url, query, body = request
        if query:
            from urllib.parse import urlencode

            url = f"{url}?{urlencode(query)}"
        data = json.dumps(body, default=str) if body is not None else None
        response = getattr(client, method)(url, data=data, content_type="application/json")
        assert response.status_code < 500, (method, url, body, response.content[:500])
        if response.status_code >= 400:
            assert {"error", "detail", "fields"} <= set(response.json())

    run()
