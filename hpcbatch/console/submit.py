"""The submit form: its fields as a SubmitJob request, and the API's refusals beside them.

The form builds exactly the JSON body boto3 would send and hands it to the same parser, policy
and handler as ``POST /v1/submitjob``: what the console accepts or refuses, and the words of a
refusal, are the API's. A refusal names an AWS field path (``arrayProperties.size``); ``field_of``
puts it beside the form field that made it.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from hpcbatch.errors import HpcbatchError, ValidationError

FIELDS = (
    "name",
    "queue",
    "definition",
    "command",
    "array_size",
    "depends_on",
    "depends_type",
    "sequential",
    "vcpus",
    "memory",
    "gpus",
    "retries",
    "timeout",
    "environment",
)
RESOURCES = (("vcpus", "VCPU"), ("memory", "MEMORY"), ("gpus", "GPU"))
_PATHS = (
    ("jobName", "name"),
    ("jobQueue", "queue"),
    ("jobDefinition", "definition"),
    ("containerOverrides.command", "command"),
    ("arrayProperties", "array_size"),
    ("dependsOn", "depends_on"),
    ("retryStrategy", "retries"),
    ("timeout", "timeout"),
    ("containerOverrides.environment", "environment"),
)
_RESOURCE = re.compile(r"containerOverrides\.resourceRequirements\[(\d+)\]")


def _number(text: str) -> int | str:
    """Digits as an int; anything else as given, for the API to refuse in its own words."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else text


def body_of(form: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The SubmitJob body, and which form field each resource requirement came from (the
    API names them by index). A command that is not shell words is a ValidationError."""
    body: dict[str, Any] = {
        "jobName": form.get("name", "").strip(),
        "jobQueue": form.get("queue", "").strip(),
        "jobDefinition": form.get("definition", "").strip(),
    }
    overrides: dict[str, Any] = {}
    command = form.get("command", "").strip()
    if command:
        try:
            overrides["command"] = shlex.split(command)
        except ValueError as error:
            raise ValidationError("command", f"is not shell words: {error}") from None
    requirements, sources = [], []
    for name, kind in RESOURCES:
        value = form.get(name, "").strip()
        if value:
            requirements.append({"type": kind, "value": value})
            sources.append(name)
    if requirements:
        overrides["resourceRequirements"] = requirements
    environment = []
    for line in form.get("environment", "").splitlines():
        if line.strip():
            key, sep, value = line.partition("=")
            if not sep:
                raise ValidationError("environment", f"line {line[:40]!r} is not NAME=value")
            environment.append({"name": key.strip(), "value": value})
    if environment:
        overrides["environment"] = environment
    if overrides:
        body["containerOverrides"] = overrides
    if form.get("array_size", "").strip():
        body["arrayProperties"] = {"size": _number(form["array_size"])}
    depends: list[dict[str, Any]] = []
    kind = form.get("depends_type", "").strip()
    for job_id in re.split(r"[\s,]+", form.get("depends_on", "").strip()):
        if job_id:
            depends.append({"jobId": job_id, **({"type": kind} if kind else {})})
    if form.get("sequential"):
        depends.append({"type": "SEQUENTIAL"})
    if depends:
        body["dependsOn"] = depends
    if form.get("retries", "").strip():
        body["retryStrategy"] = {"attempts": _number(form["retries"])}
    if form.get("timeout", "").strip():
        body["timeout"] = {"attemptDurationSeconds": _number(form["timeout"])}
    return body, sources


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body).encode()


def field_of(error: HpcbatchError, sources: list[str]) -> str:
    """The form field an API refusal is about; ``""``: the form as a whole."""
    path = error.field if isinstance(error, ValidationError) else error.message.split(":", 1)[0]
    if path in FIELDS:
        return path
    found = _RESOURCE.match(path)
    if found is not None:
        index = int(found.group(1))
        return sources[index] if index < len(sources) else "vcpus"
    for prefix, name in _PATHS:
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return name
    return ""
