"""Checks one HTTP response against the OpenAPI document, so the HTTP tests can hold the
server to its document on every response they receive, not only in a dedicated test.

Use::

    from tests.http.schema_check import check_response

    check_response(
        document,  # the parsed /api/openapi.json
        method="GET",
        path="/api/alice/tasks",  # the raw request path (query ignored) or a path template
        status=200,
        headers=response.headers,  # any str -> str mapping; names match case-insensitively
        body=await response.read(),
    )

It raises ``AssertionError`` saying what does not conform:

* a path that is none of the document's is an unknown route: the answer must be the
  document's 404 error response;
* a method the path does not list must get the 405 error response, whose ``Allow``
  names exactly the documented methods; or, for ``OPTIONS``, a bodiless 204 (a CORS
  preflight, answered only when origins are configured);
* the status must be documented for the operation;
* required response headers must be present, and every documented header that is
  present must match its schema;
* ``HEAD`` responses, 204 and 304 have no body (a ``HEAD``'s Content-Type is one its
  ``GET`` documents); any other body's Content-Type must be documented, a JSON body must
  be valid (orjson: no NaN) against its schema under JSON Schema Draft 2020-12, with the
  document's ``$ref`` resolved and formats checked, and a ``text/*`` body must be UTF-8.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["check_response", "component_validator"]

_BASE: Final = "urn:todo:openapi"
_METHODS: Final = ("get", "head", "post", "put", "patch", "delete", "options", "trace")
_BODILESS: Final = frozenset({204, 304})


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^{}]+\})", template)
    return re.compile(
        "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    )


@dataclass
class _Document:
    """A document with what checking needs, prepared once."""

    content: dict[str, Any]
    registry: Registry[Any]
    templates: list[tuple[re.Pattern[str], str]]
    validators: dict[str, Draft202012Validator] = field(default_factory=dict)

    def resolve(self, node: Any, pointer: str) -> tuple[Any, str]:
        """``node`` (at ``pointer``) with its local ``$ref`` chain followed."""
        while isinstance(node, dict) and "$ref" in node:
            pointer = node["$ref"].removeprefix("#")
            node = self.content
            for token in pointer.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    def validator(self, pointer: str) -> Draft202012Validator:
        """A validator of the schema at ``pointer``, its references resolved in the document."""
        if pointer not in self.validators:
            self.validators[pointer] = Draft202012Validator(
                {"$ref": f"{_BASE}#{pointer}"},
                registry=self.registry,
                format_checker=Draft202012Validator.FORMAT_CHECKER,
            )
        return self.validators[pointer]


@functools.lru_cache(maxsize=8)
def _prepare(serialized: bytes) -> _Document:
    content = orjson.loads(serialized)
    registry: Registry[Any] = Registry().with_resource(_BASE, DRAFT202012.create_resource(content))
    # Literal segments win over parameters, as in the server's router.
    templates = sorted(content["paths"], key=lambda t: (t.count("{"), t))
    return _Document(content, registry, [(_template_regex(t), t) for t in templates])


def _template(document: _Document, path: str) -> str | None:
    if path in document.content["paths"]:
        return path
    path = path.partition("?")[0]
    return next((t for regex, t in document.templates if regex.fullmatch(path)), None)


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").partition(";")[0].strip().lower()


def _check_headers(
    document: _Document,
    response: Mapping[str, Any],
    pointer: str,
    headers: Mapping[str, str],
    label: str,
) -> None:
    for name, spec in response.get("headers", {}).items():
        spec, spec_pointer = document.resolve(spec, f"{pointer}/headers/{_escape(name)}")
        value = headers.get(name.lower())
        if value is None:
            assert not spec.get("required", False), f"{label}: required header {name} missing"
            continue
        errors = list(document.validator(f"{spec_pointer}/schema").iter_errors(value))
        assert not errors, f"{label}: header {name}: {value!r}: {errors[0].message}"


def _check_body(
    document: _Document,
    response: Mapping[str, Any],
    pointer: str,
    headers: Mapping[str, str],
    body: bytes,
    label: str,
) -> None:
    content = response.get("content", {})
    if not content:
        assert body == b"", f"{label}: documented without a body, but got {body[:200]!r}"
        return
    media_type = _media_type(headers)
    assert media_type in content, f"{label}: Content-Type {media_type!r} not in {list(content)}"
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            instance = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            raise AssertionError(f"{label}: body is not JSON ({error}): {body[:200]!r}") from None
        schema_pointer = f"{pointer}/content/{_escape(media_type)}/schema"
        errors = sorted(
            document.validator(schema_pointer).iter_errors(instance),
            key=lambda error: list(error.absolute_path),
        )
        assert not errors, f"{label}: body does not match the document:\n" + "\n".join(
            f"  at {list(error.absolute_path)}: {error.message}" for error in errors[:5]
        )
    elif media_type.startswith("text/"):
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError(f"{label}: {media_type} body is not UTF-8") from None


def _check_undocumented_method(
    document: _Document,
    path_item: Mapping[str, Any],
    method: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    label: str,
) -> None:
    if method == "options" and status == 204:  # a CORS preflight
        assert body == b"", f"{label}: a preflight has no body"
        return
    assert status == 405, f"{label}: method not in the document, so 405 was due, got {status}"
    allowed = {m.upper() for m in _METHODS if m in path_item}
    allow = {m.strip().upper() for m in headers.get("allow", "").split(",") if m.strip()}
    assert allow == allowed, f"{label}: Allow {sorted(allow)} but documented {sorted(allowed)}"
    _check_error(document, "METHOD_NOT_ALLOWED", method, headers, body, label)


def _check_error(
    document: _Document,
    name: str,
    method: str,
    headers: Mapping[str, str],
    body: bytes,
    label: str,
) -> None:
    """A shared error response of the document, which a HEAD answers without its body."""
    pointer = f"/components/responses/{name}"
    response, pointer = document.resolve(document.content["components"]["responses"][name], pointer)
    _check_headers(document, response, pointer, headers, label)
    if method == "head":
        assert body == b"", f"{label}: HEAD answered with a body"
    else:
        _check_body(document, response, pointer, headers, body, label)


def check_response(
    document: Mapping[str, Any],
    method: str,
    path: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
) -> None:
    """Assert that this response is one the document describes (see the module docstring)."""
    prepared = _prepare(orjson.dumps(document))
    lowered = {name.lower(): value for name, value in headers.items()}
    method = method.lower()
    label = f"{method.upper()} {path} -> {status}"
    template = _template(prepared, path)
    if template is None:
        assert status == 404, f"{label}: no such path in the document, so 404 was due"
        _check_error(prepared, "NOT_FOUND", method, lowered, body, label)
        return
    path_item = prepared.content["paths"][template]
    if method not in path_item:
        _check_undocumented_method(prepared, path_item, method, status, lowered, body, label)
        return
    responses = path_item[method]["responses"]
    key = next((k for k in (str(status), f"{status // 100}XX", "default") if k in responses), None)
    assert key is not None, f"{label}: status not documented (documented: {list(responses)})"
    pointer = f"/paths/{_escape(template)}/{method}/responses/{key}"
    response, pointer = prepared.resolve(responses[key], pointer)
    _check_headers(prepared, response, pointer, lowered, label)
    if method == "head":
        assert body == b"", f"{label}: HEAD answered with a body"
        get_response = path_item.get("get", {}).get("responses", {}).get(key)
        if get_response is not None and status not in _BODILESS:
            get_content = prepared.resolve(get_response, "")[0].get("content", {})
            if get_content:
                media_type = _media_type(lowered)
                assert media_type in get_content, f"{label}: Content-Type {media_type!r} unlike GET"
        return
    if status in _BODILESS:
        assert body == b"", f"{label}: a {status} has no body"
        return
    _check_body(prepared, response, pointer, lowered, body, label)


def component_validator(document: Mapping[str, Any], name: str) -> Draft202012Validator:
    """A validator of ``#/components/schemas/{name}``, as ``check_response`` applies it."""
    return _prepare(orjson.dumps(document)).validator(f"/components/schemas/{_escape(name)}")
