"""The "Flask floor": the least a Flask app under the same server can do for a hook call.

It reads the same JSON body with the same parser the service uses (orjson, so the
floor is not inflated by a slower parser), and answers a fixed cards document: the
service's own answer for that patient, captured by the benchmark before the run, so
both send the same number of bytes. Served as ``gunicorn bench.floor_app:app``.

``BENCH_FLOOR_RESPONSES``: path of a JSON file ``{patientId: cards document}``.
"""

from __future__ import annotations

import os

import orjson
from flask import Flask, Response, request

__all__ = ["app", "create_floor_app"]


def create_floor_app(responses_path: str | None) -> Flask:
    answers: dict[str, bytes] = {}
    if responses_path:
        with open(responses_path, "rb") as handle:
            answers = {pid: orjson.dumps(doc) for pid, doc in orjson.loads(handle.read()).items()}
    default = orjson.dumps({"cards": []})
    floor = Flask("bench_floor")

    @floor.get("/healthz")
    def healthz() -> Response:
        return Response(b'{"status":"ok"}', mimetype="application/json")

    @floor.post("/cds-services/<service_id>")
    def hook(service_id: str) -> Response:
        body = orjson.loads(request.get_data(cache=False))
        # A dict lookup on the parsed body: the floor touches the JSON it parsed, as the service must.
        patient_id = body.get("context", {}).get("patientId", "")
        return Response(answers.get(patient_id, default), mimetype="application/json")

    return floor


app = create_floor_app(os.environ.get("BENCH_FLOOR_RESPONSES"))
