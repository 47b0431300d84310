"""Validate an incoming CDS Hooks 2.0 service request into a ``HookRequest``.

https://cds-hooks.hl7.org/2.0/#http-request and the patient-view hook
(https://cds-hooks.hl7.org/hooks/STU1/patient-view.html). Every problem is
collected, so a client learns all of them in one 400, never a stack trace.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from service.errors import BadRequest

__all__ = ["FhirAuthorization", "HookRequest", "parse_hook_request", "json_depth_exceeds", "ABSENT"]

# FHIR R4 id datatype: [A-Za-z0-9\-\.]{1,64}
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_USER_ID = re.compile(r"(Practitioner|PractitionerRole|Patient|RelatedPerson)/[A-Za-z0-9\-.]{1,64}")


class _Absent:
    """Marks a prefetch key the client did not send (distinct from ``null``)."""

    _instance: _Absent | None = None

    def __new__(cls) -> _Absent:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


@dataclass(frozen=True, slots=True)
class FhirAuthorization:
    access_token: str
    token_type: str
    expires_in: int
    scope: str
    subject: str
    patient: str | None = None

    def __repr__(self) -> str:  # the token must never reach a log line
        return f"FhirAuthorization(token_type={self.token_type!r}, scope={self.scope!r}, access_token=<redacted>)"


@dataclass(frozen=True, slots=True)
class HookRequest:
    hook: str
    hook_instance: str
    patient_id: str
    user_id: str
    encounter_id: str | None
    fhir_server: str | None
    fhir_authorization: FhirAuthorization | None
    prefetch: dict[str, Any]  # key -> value as sent (None for null); absent keys are simply missing

    @property
    def context(self) -> dict[str, str]:
        """The hook context as sent (the fields this hook defines), for prefetch tokens."""
        out = {"patientId": self.patient_id, "userId": self.user_id}
        if self.encounter_id is not None:
            out["encounterId"] = self.encounter_id
        return out

    def prefetch_value(self, key: str) -> Any:
        return self.prefetch.get(key, ABSENT)


# Depth is measured on the raw bytes, where C-speed byte operations replace a Python walk over
# every parsed node (the walk was the largest single cost of a big prefetch body).
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")  # depth does not care which kind of bracket
_NOT_KEPT = bytes(b for b in range(256) if b not in b'"[]{}')


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when containers in ``raw`` nest deeper than ``limit``; ``raw`` must be valid JSON.

    Escapes go first (backslash pairs, then escaped quotes: escapes read left to right), so the
    quotes left delimit strings, whose text is dropped, leaving only brackets. Each pass then
    removes the innermost pairs, so the passes needed to empty the text are the nesting depth.
    """
    if b"\\" in raw:
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    text = raw.translate(_BRACKETS_ONLY, _NOT_KEPT)
    brackets = b"".join(text.split(b'"')[::2])  # outside strings: every other piece
    for _ in range(limit):
        if not brackets:
            return False
        brackets = brackets.replace(b"[]", b"")
    return bool(brackets)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _absolute_http_url(text: str) -> bool:
    try:
        parts = urlsplit(text)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc) and not parts.username and not parts.password


def _nonempty_str(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def _parse_authorization(value: Any, problems: list[str]) -> FhirAuthorization | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append("fhirAuthorization must be an object")
        return None
    for name in ("access_token", "scope", "subject"):
        if not _nonempty_str(value.get(name)):
            problems.append(f"fhirAuthorization.{name} is required and must be a non-empty string")
    token_type = value.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        problems.append('fhirAuthorization.token_type must be "Bearer"')
    expires_in = value.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or expires_in < 0:
        problems.append("fhirAuthorization.expires_in is required and must be a non-negative integer")
    patient = value.get("patient")
    if patient is not None and not (isinstance(patient, str) and _FHIR_ID.fullmatch(patient)):
        problems.append("fhirAuthorization.patient must be a FHIR id")
    if problems:
        return None
    return FhirAuthorization(
        access_token=value["access_token"],
        token_type="Bearer",
        expires_in=cast(int, expires_in),  # checked above: any problem returned None
        scope=value["scope"],
        subject=value["subject"],
        patient=patient,
    )


def parse_hook_request(body: Any, *, expected_hook: str, prefetch_keys: frozenset[str]) -> HookRequest:
    """Check ``body`` against the CDS Hooks request schema; raise ``BadRequest`` listing every problem."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    problems: list[str] = []

    hook = body.get("hook")
    if not _nonempty_str(hook):
        problems.append("hook is required and must be a string")
    elif hook != expected_hook:
        problems.append(f'hook must be "{expected_hook}" for this service')

    hook_instance = body.get("hookInstance")
    if not isinstance(hook_instance, str) or not hook_instance.strip() or not _is_uuid(hook_instance):
        problems.append("hookInstance is required and must be a UUID")

    fhir_server = body.get("fhirServer")
    if fhir_server is not None and not (isinstance(fhir_server, str) and _absolute_http_url(fhir_server)):
        problems.append("fhirServer must be an absolute http(s) URL")

    auth_problems: list[str] = []
    authorization = _parse_authorization(body.get("fhirAuthorization"), auth_problems)
    problems.extend(auth_problems)
    if body.get("fhirAuthorization") is not None and fhir_server is None:
        problems.append("fhirServer is required when fhirAuthorization is given")

    context = body.get("context")
    patient_id = user_id = encounter_id = None
    if not isinstance(context, dict):
        problems.append("context is required and must be an object")
    else:
        patient_id = context.get("patientId")
        if not (isinstance(patient_id, str) and _FHIR_ID.fullmatch(patient_id)):
            problems.append("context.patientId is required and must be a FHIR id (not Patient/<id>)")
        user_id = context.get("userId")
        if not (isinstance(user_id, str) and _USER_ID.fullmatch(user_id)):
            problems.append(
                "context.userId is required and must be Practitioner/<id>, PractitionerRole/<id>, "
                "Patient/<id> or RelatedPerson/<id>"
            )
        encounter_id = context.get("encounterId")
        if encounter_id is not None and not (isinstance(encounter_id, str) and _FHIR_ID.fullmatch(encounter_id)):
            problems.append("context.encounterId must be a FHIR id")

    if authorization and authorization.patient and patient_id and authorization.patient != patient_id:
        problems.append("fhirAuthorization.patient does not match context.patientId")

    prefetch_in = body.get("prefetch")
    prefetch: dict[str, Any] = {}
    if prefetch_in is not None:
        if not isinstance(prefetch_in, dict):
            problems.append("prefetch must be an object")
        else:
            for key, value in prefetch_in.items():
                if key not in prefetch_keys:
                    continue  # not ours to read; the spec says clients must not send it
                if value is not None and not (isinstance(value, dict) and isinstance(value.get("resourceType"), str)):
                    problems.append(f"prefetch.{key} must be a FHIR resource or null")
                    continue
                prefetch[key] = value

    extension = body.get("extension")
    if extension is not None and not isinstance(extension, dict):
        problems.append("extension must be an object")

    if problems:
        raise BadRequest("The CDS Hooks request is not valid.", details=problems)
    assert isinstance(patient_id, str) and isinstance(user_id, str) and isinstance(hook_instance, str)
    return HookRequest(
        hook=expected_hook,
        hook_instance=hook_instance,
        patient_id=patient_id,
        user_id=user_id,
        encounter_id=encounter_id,
        fhir_server=fhir_server.rstrip("/") if isinstance(fhir_server, str) else None,
        fhir_authorization=authorization,
        prefetch=prefetch,
    )
