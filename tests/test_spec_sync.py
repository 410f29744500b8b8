"""The spec, the generated types and the app agree: the app serves exactly the spec's paths and
methods, the committed types are what the spec generates, and every request field the spec
types is checked by the request path."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis

from llmgw import api_types
from llmgw.chat_request import parse_chat_request, schema_refusal
from llmgw.config import load_settings
from llmgw.errors import InvalidRequest
from llmgw.web.app import create_app
from tests.support.gateway import running_gateway

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "api" / "openai_proxy.yml"
GENERATE = ROOT / "scripts" / "generate-types"
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def spec_document() -> dict[str, Any]:
    document: dict[str, Any] = schemathesis.openapi.from_path(SPEC).raw_schema
    return document


PROBED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


async def test_the_app_serves_exactly_the_paths_and_methods_of_the_spec() -> None:
    described = {
        (path, method.upper())
        for path, operations in spec_document()["paths"].items()
        for method in operations
        if method in HTTP_METHODS
    }
    settings = load_settings({})
    routed = {
        # Quart writes `/items/<int:id>`, OpenAPI `/items/{id}`.
        re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for rule in create_app(settings).url_map.iter_rules()
        if rule.endpoint != "static"
    }
    # Which (path, method) pairs are served is asked of the running gateway itself.
    served = set()
    async with running_gateway({}) as gw:
        for path in sorted(routed | {path for path, _ in described}):
            for method in PROBED_METHODS:
                # A path parameter gets a value the gateway knows (the model `auto`).
                response = await gw.client.request(method, re.sub(r"\{[^}]+\}", "auto", path))
                if response.status_code not in (404, 405):
                    served.add((path, method))
    assert served == described


def generate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GENERATE), *args], capture_output=True, text=True, check=False
    )


def test_the_committed_types_are_what_the_spec_generates() -> None:
    done = generate("--check")
    assert done.returncode == 0, done.stderr


def test_a_spec_changed_without_regenerating_fails_the_check(tmp_path: Path) -> None:
    spec = tmp_path / "openai_proxy.yml"
    module = tmp_path / "api_types.py"
    spec.write_text(
        SPEC.read_text().replace("    Health:\n", "    Health:\n      description: Changed.\n")
    )
    shutil.copy(ROOT / "src" / "llmgw" / "api_types.py", module)
    stale = generate("--check", f"--spec={spec}", f"--module={module}")
    assert stale.returncode == 1
    assert "+    Changed." in stale.stderr
    assert "is stale: run `python scripts/generate-types`" in stale.stderr
    assert generate(f"--spec={spec}", f"--module={module}").returncode == 0
    assert generate("--check", f"--spec={spec}", f"--module={module}").returncode == 0


def test_the_generated_module_says_it_must_not_be_edited() -> None:
    source = Path(api_types.__file__).read_text()
    assert source.startswith("# GENERATED CODE: DO NOT EDIT BY HAND.\n")


WRONG_VALUE = {"string": 5, "integer": "1", "number": "1.5", "boolean": "true", "object": [1]}


def request_properties() -> list[tuple[str, str]]:
    schema = spec_document()["components"]["schemas"]["ChatCompletionRequest"]
    return [
        (name, prop["type"])
        for name, prop in schema["properties"].items()
        if prop.get("type") in WRONG_VALUE
    ]


@pytest.mark.parametrize(("field", "kind"), request_properties())
def test_every_request_field_the_spec_types_is_checked(field: str, kind: str) -> None:
    body = {"messages": [{"role": "user"}], field: WRONG_VALUE[kind]}
    with pytest.raises(InvalidRequest) as refused:
        parse_chat_request(orjson.dumps(body))
    assert refused.value.param == field
    assert refused.value.message.startswith(f"'{field}' must be ")


def test_a_field_the_spec_leaves_open_passes_through_untouched() -> None:
    body = {"messages": [{"role": "user", "x": {"y": [1]}}], "tools": "anything", "stop": 3}
    request = parse_chat_request(orjson.dumps(body))
    assert request.body == body


@pytest.mark.parametrize(
    ("msgspec_message", "param", "message"),
    [
        ("Expected `int` <= 9 - at `$.max_tokens`", "max_tokens", "'max_tokens' must be at most 9"),
        ("Expected `int` > 0 - at `$.n`", "n", "'n' must be more than 0"),
        (
            "Expected `str` of length >= 1 - at `$.model`",
            "model",
            "'model' must be at least 1 character",
        ),
        (
            "Expected `str` of length <= 400 - at `$.model`",
            "model",
            "'model' must be at most 400 characters",
        ),
        ("Expected `int`, got `str` - at `$.nowhere`", None, "does not match the API schema"),
        ("Expected `int`, got `str` - at `$.model[0]`", None, "does not match the API schema"),
        ("Expected `int`, got `str` - at `$.messages.role`", None, "does not match"),
        ("something msgspec never said", None, "does not match the API schema"),
    ],
)
def test_a_validation_error_is_worded_from_the_declared_type(
    msgspec_message: str, param: str | None, message: str
) -> None:
    refusal = schema_refusal(msgspec_message)
    assert (refusal.status, refusal.param) == (400, param)
    assert message in refusal.message
