"""What made a card say what it says, as a short hash: the alert-fatigue rules (issue 16) hide a card the
clinician already answered until this changes.

Only *material* facts go in: which agents failed, whether disease is active and how raised the
enzymes are (a rise into a higher band re-shows the card; a repeat result in the same band does not),
falling lung function, the phenotypes and conditions that change the plan (ILD, anti-MDA5, cancer,
pregnancy, IMNM, an active statin), what is drafted, and which safety checks are still open. Ids and
flags only, never values or dates, and then hashed: a fingerprint carries no patient data.
"""

from __future__ import annotations

import hashlib
import json

from .rules import Assessment

__all__ = ["fingerprint", "MATERIAL_PHENOTYPES", "enzyme_band"]

MATERIAL_PHENOTYPES = ("ild", "anti_mda5", "cancer", "imnm", "skin_predominant", "lung_function_falling")
# Multiples of the upper limit of normal that count as a different level of activity.
_BANDS = (1.0, 2.0, 5.0, 10.0)


def enzyme_band(value: float | None, upper: float | None) -> int | None:
    """0 within range; 1 above it, 2 above twice it, 3 above five times, 4 above ten times; None unknown."""
    if value is None or upper is None or upper <= 0:
        return None
    return sum(1 for b in _BANDS if value > b * upper)


def _material(a: Assessment, kind: str) -> dict[str, object]:
    raised = a.activity.raised_enzyme
    facts: dict[str, object] = {
        "kind": kind,
        "route": a.route,
        "failed": sorted(s.therapy_class for s in a.failed),
        "in_progress": sorted(s.therapy_class for s in a.in_progress),
        "active": a.activity.active,
        # The band, not the trend: a rise that matters moves the band; rising -> plateau is no news.
        "enzyme": [raised.group, enzyme_band(raised.latest.value, raised.latest.reference_high)]
        if raised is not None else None,
        "lung_falling": a.activity.lung_decline is not None,
        "relapse": a.activity.relapse is not None,
        "phenotypes": sorted(p for p in a.phenotypes if p in MATERIAL_PHENOTYPES),
        "conditions": sorted(a.conditions),
        "statin": bool(a.statins),
    }
    if kind == "safety":
        facts["checks"] = sorted(f"{i.caution.id}:{int(i.open)}" for i in a.safety)
    else:
        facts["drafts"] = [r.option.id for r in a.drafts]
        facts["unsafe"] = sorted(o.id for o, _ in a.removed)
        if a.urgent is not None:
            facts["urgent"] = [a.urgent.critical, [x.rxnorm_in for x in a.urgent.agents]]
    return facts


def fingerprint(a: Assessment, kind: str, of: str = "") -> str:
    """``of``: what else makes the card the same card (an order-time card: the draft order it is about)."""
    canonical = json.dumps({**_material(a, kind), "of": of}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]
