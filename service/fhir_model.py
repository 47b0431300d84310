"""The FHIR R4 shapes the service reads, as msgspec structs: decoded and type-checked in C.

Only the fields the service reads are declared; every other field is skipped unread, so a
malformed note or extension never costs a record. Each resource is decoded on its own from its
bytes (``msgspec.Raw``): one malformed resource becomes an ``Fhir`` with a ``problem`` and is
skipped and reported by ``service.fhir_parse``, never failing the call.

How a field we read is declared follows when the parser reads it:

* read whenever present -> typed here (``Code``, ``String``, ``CodeableConcept``...), so a
  wrong type fails the decode of that resource;
* read only when another field is absent (``effectivePeriod`` after ``effectiveDateTime``,
  ``medicationReference`` after ``medicationCodeableConcept``...) -> ``Raw``, decoded with its
  typed struct by ``fhir_parse`` when it is read, so a malformed field that is never read does
  not drop the resource;
* read leniently, where a wrong shape means "not stated" rather than "invalid" (dosage,
  statusReason, referenceRange, onsetPeriod, subject/patient's ``subject or patient``
  fallback) -> ``Any`` (plain JSON values, decoded in C), judged in ``fhir_parse``.

FHIR dates are kept as strings here and read by ``fhir_parse`` (partial dates, calendar
validity). Structs are frozen and ``gc=False``: they hold only scalars, tuples of structs and
JSON values decoded from bytes, never anything that could point back at them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import msgspec
from msgspec import UNSET, Meta, Raw, Struct, UnsetType

__all__ = [
    "Code",
    "String",
    "Id",
    "Coding",
    "CodeableConcept",
    "Period",
    "MedicationReference",
    "R5Medication",
    "Quantity",
    "DispenseRequest",
    "Ingredient",
    "Patient",
    "Condition",
    "MedicationUse",
    "MedicationStatement",
    "MedicationRequest",
    "MedicationAdministration",
    "Observation",
    "Medication",
    "OperationOutcome",
    "Fhir",
    "decode_resource",
    "decode_envelope",
    "bundle_resources",
    "bundle_page",
    "entry_resources",
    "next_link",
    "Envelope",
    "problem_of",
]

# FHIR code and string (https://hl7.org/fhir/R4/datatypes.html): typed ``str`` here, their finer
# rules (a code has no leading, trailing or double whitespace; a string we read is not blank) are
# checked by ``fhir_parse`` when the field is read - concepts once per distinct concept, memoised.
# A msgspec ``pattern`` would call Python's ``re`` for every string decoded: measured, it tripled
# the cost of decoding the heavy bench patient (1.46 ms against 0.47 ms without).
Code = str
String = str
Id = Annotated[str, Meta(min_length=1)]  # a resource id we key records by


class _Base(Struct, frozen=True, gc=False):
    """Unknown fields are ignored (msgspec's default): only what is declared is read."""


class Coding(_Base, frozen=True):
    system: String | None = None
    code: Code | None = None
    display: String | None = None


class CodeableConcept(_Base, frozen=True):
    coding: tuple[Coding, ...] | None = None  # a tuple, so a concept is hashable (memoised in fhir_parse)
    text: String | None = None


class Period(_Base, frozen=True):
    start: str | None = None
    end: str | None = None


class MedicationReference(_Base, frozen=True):
    reference: String | None = None
    display: Any = None  # read only once the reference is followed


class R5Medication(_Base, frozen=True):
    """R5 ``CodeableReference``: ``medication.concept`` / ``medication.reference``."""

    concept: CodeableConcept | None = None
    reference: Raw = Raw()  # read only when there is no concept


class Quantity(_Base, frozen=True):
    value: float | None = None
    unit: String | None = None
    code: Any = None  # read only when there is no unit


class DispenseRequest(_Base, frozen=True):
    validityPeriod: Period | None = None


class Ingredient(_Base, frozen=True):
    itemCodeableConcept: CodeableConcept | None = None
    item: Any = None  # R5 ``item.concept``, read only when there is no itemCodeableConcept


# --- resources: tagged by resourceType ---------------------------------------------------------


class _Resource(Struct, frozen=True, gc=False, tag_field="resourceType"):
    resource_type: ClassVar[str]


class Patient(_Resource, frozen=True, tag="Patient"):
    resource_type: ClassVar[str] = "Patient"
    id: Any = None  # compared with the patient in context before anything else
    birthDate: str | None = None
    gender: Code | None = None


class _AboutPatient(_Resource, frozen=True):
    id: Id | None = None
    subject: Any = None  # ``subject or patient``: an empty subject falls back to patient
    patient: Any = None


class Condition(_AboutPatient, frozen=True, tag="Condition"):
    resource_type: ClassVar[str] = "Condition"
    code: CodeableConcept | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: str | None = None
    onsetPeriod: Any = None  # read when there is no onsetDateTime, and only if it is an object
    abatementDateTime: str | None = None
    recordedDate: str | None = None


class MedicationUse(_AboutPatient, frozen=True):
    """What a MedicationStatement, MedicationRequest or MedicationAdministration says about a drug."""

    status: Code | None = None
    intent: Code | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Raw = Raw()  # MedicationReference, read when there is no medicationCodeableConcept
    medication: Raw = Raw()  # R5Medication, read when there is neither
    contained: Raw = Raw()  # read only for a "#id" reference
    effectiveDateTime: str | None | UnsetType = UNSET
    effectivePeriod: Raw = Raw()  # Period, read when there is no effectiveDateTime
    effectiveInstant: Raw = Raw()  # str, read when there is neither
    authoredOn: str | None = None
    dateAsserted: str | None = None
    dispenseRequest: DispenseRequest | None = None
    dosage: Any = None  # read leniently (dose, text); its route strictly
    dosageInstruction: Any = None
    statusReason: Any = None  # read leniently


class MedicationStatement(MedicationUse, frozen=True, tag="MedicationStatement"):
    resource_type: ClassVar[str] = "MedicationStatement"


class MedicationRequest(MedicationUse, frozen=True, tag="MedicationRequest"):
    resource_type: ClassVar[str] = "MedicationRequest"


class MedicationAdministration(MedicationUse, frozen=True, tag="MedicationAdministration"):
    resource_type: ClassVar[str] = "MedicationAdministration"


class Observation(_AboutPatient, frozen=True, tag="Observation"):
    resource_type: ClassVar[str] = "Observation"
    code: CodeableConcept | None = None
    status: Code | None = None
    valueQuantity: Quantity | None = None
    valueString: String | None = None
    valueCodeableConcept: CodeableConcept | None = None
    interpretation: tuple[CodeableConcept | None, ...] | None = None
    referenceRange: Any = None  # read leniently: the first range's high value only
    effectiveDateTime: str | None | UnsetType = UNSET
    effectivePeriod: Raw = Raw()
    effectiveInstant: Raw = Raw()
    issued: Any = None  # read when there is no effective date


class Medication(_Resource, frozen=True, tag="Medication"):
    resource_type: ClassVar[str] = "Medication"
    id: Any = None  # a key for references; not itself judged
    code: CodeableConcept | None = None
    ingredient: tuple[Ingredient, ...] | None = None
    form: CodeableConcept | None = None


class OperationOutcome(_Resource, frozen=True, tag="OperationOutcome"):
    resource_type: ClassVar[str] = "OperationOutcome"
    issue: Any = None


class _Head(Struct, frozen=True, gc=False):
    """What is read of a resource that failed its typed decode: enough to say what it was."""

    resourceType: Any = None
    id: Any = None
    subject: Any = None
    patient: Any = None


_ANY_RESOURCE = (
    Patient
    | Condition
    | MedicationStatement
    | MedicationRequest
    | MedicationAdministration
    | Observation
    | Medication
    | OperationOutcome
)
_RESOURCE = msgspec.json.Decoder(_ANY_RESOURCE)
_HEAD = msgspec.json.Decoder(_Head)
_PATH = re.compile(r"at `\$\.?([^`]*)`")


def problem_of(exc: msgspec.ValidationError) -> str:
    """The field a validation error is about, e.g. ``code.coding.code`` ("" for the value itself).

    Built from the path msgspec reports, which names fields of our structs and array indices
    (dropped), never a value: safe to log."""
    match = _PATH.search(str(exc))
    return re.sub(r"\[\d+\]", "", match.group(1)) if match else ""


class Fhir:
    """One resource as read: its type, the typed struct (or its head, if it failed), its bytes."""

    __slots__ = ("resource_type", "data", "raw", "problem")

    def __init__(self, resource_type: str, data: Any, raw: Raw | bytes, problem: str | None = None) -> None:
        self.resource_type = resource_type
        self.data = data  # one of the resource structs above, or _Head when ``problem`` is set
        self.raw = raw  # for FHIR_VALIDATION=strict
        self.problem = problem  # None, or the field that failed its datatype

    def __repr__(self) -> str:  # never the content
        return f"Fhir({self.resource_type}{', invalid' if self.problem else ''})"


def decode_resource(raw: Raw | bytes) -> Fhir | None:
    """Decode one resource; None if it is not a JSON object with a string ``resourceType``."""
    try:
        data = _RESOURCE.decode(raw)
    except msgspec.ValidationError as exc:  # (a subclass of DecodeError: first)
        try:
            head = _HEAD.decode(raw)
        except msgspec.ValidationError:
            return None  # not an object: not a resource
        if not isinstance(head.resourceType, str):
            return None
        return Fhir(head.resourceType, head, raw, problem_of(exc) or "resource")
    except (msgspec.DecodeError, RecursionError):
        return None  # (bodies are checked as a whole first: defensive)
    return Fhir(data.resource_type, data, raw)


# --- Bundles and the envelope of an answer or a prefetch value ------------------------------------


class _Entry(Struct, frozen=True, gc=False):
    resource: Raw = Raw()


class Envelope(Struct, frozen=True, gc=False):
    """A resource's type, and what a Bundle or an OperationOutcome holds (entries left undecoded)."""

    resourceType: str
    entry: Raw = Raw()
    link: Any = None
    issue: Any = None


class _TypedEntry(Struct, frozen=True, gc=False):
    resource: _ANY_RESOURCE | None = None


_ENVELOPE = msgspec.json.Decoder(Envelope)
# Every entry typed in one decode: the fast path when all of them are valid (the usual answer). Any fault fails
# it as a whole, and the entries are then decoded one by one, so one bad resource still costs only itself.
_TYPED_ENTRIES = msgspec.json.Decoder(tuple[_TypedEntry, ...])
_ENTRIES = msgspec.json.Decoder(tuple[_Entry, ...])
_RAW_LIST = msgspec.json.Decoder(tuple[Raw, ...])
_ENTRY = msgspec.json.Decoder(_Entry)


def decode_envelope(raw: Raw | bytes) -> Envelope | None:
    """None unless ``raw`` is a JSON object with a string ``resourceType``."""
    try:
        return _ENVELOPE.decode(raw)
    except msgspec.ValidationError:
        return None


def bundle_resources(bundle: Envelope, limit: int | None = None) -> list[Fhir]:
    """The resources of a Bundle's entries (at most ``limit``), each decoded on its own; malformed entries are dropped."""
    return bundle_page(bundle, limit)[0]


def bundle_page(bundle: Envelope, limit: int | None = None) -> tuple[list[Fhir], bool]:
    """The resources of a Bundle's entries, at most ``limit`` (the record cap, applied while reading:
    entries past it are never decoded), and whether entries were left unread because of ``limit``."""
    if not bundle.entry:
        return [], False
    try:
        entries = _ENTRIES.decode(bundle.entry)
    except msgspec.ValidationError:
        entries = _lenient_entries(bundle.entry)
    else:
        if limit is None or 0 < len(entries) <= limit:
            try:
                typed = _TYPED_ENTRIES.decode(bundle.entry)  # the same array: one typed entry per entry
            except (msgspec.ValidationError, RecursionError):
                pass  # one entry or more is not a valid resource we read: each on its own, below
            else:
                return [
                    Fhir(t.resource.resource_type, t.resource, e.resource)
                    for t, e in zip(typed, entries, strict=True)
                    if t.resource is not None
                ], False
    if limit is not None and limit <= 0:
        return [], bool(entries)
    out = []
    for index, entry in enumerate(entries):
        if entry.resource:
            resource = decode_resource(entry.resource)
            if resource is not None:
                out.append(resource)
                if limit is not None and len(out) >= limit:
                    return out, index + 1 < len(entries)
    return out, False


def entry_resources(items: Sequence[Raw], limit: int) -> tuple[list[Fhir], bool]:
    """The resources of Bundle entries given one by one (each entry's bytes), at most ``limit``, and whether
    more were left unread; an entry that is not an object with a resource is dropped."""
    out: list[Fhir] = []
    for index, item in enumerate(items):
        try:
            entry = _ENTRY.decode(item)
        except msgspec.ValidationError:
            continue
        resource = decode_resource(entry.resource) if entry.resource else None
        if resource is not None:
            out.append(resource)
            if len(out) >= limit:
                return out, index + 1 < len(items)
    return out, False


def _lenient_entries(raw: Raw) -> tuple[_Entry, ...]:
    """One entry at a time, when the fast path failed: ``entry`` not an array, or an entry not an object."""
    try:
        items = _RAW_LIST.decode(raw)
    except msgspec.ValidationError:
        return ()
    out = []
    for item in items:
        try:
            out.append(_ENTRY.decode(item))
        except msgspec.ValidationError:
            continue
    return tuple(out)


def next_link(bundle: Envelope) -> str | None:
    links = bundle.link
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next" and isinstance(link.get("url"), str):
            return str(link["url"])
    return None
