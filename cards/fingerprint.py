"""What made a card say what it says, for the alert-fatigue rules (issue 16): a card the clinician already
answered stays hidden until there is *news* - a material fact the card did not have when it was answered.

A fingerprint is a set of material-fact tokens, each hashed (ids and flags only, never values or dates, so it
carries no patient data), written as space-separated short hashes. News is a token the stored fingerprint
does not hold (``is_news``): a new failed agent, activity appearing or enzymes rising into a higher band, lung
function starting to fall, a new phenotype or condition (ILD, anti-MDA5, cancer, pregnancy, IMNM, a statin),
a different draft, an option becoming unsafe, a new check. Facts that *disappear* (a result ageing out of
"recent", enzymes falling a band) are not news: the card was already answered with more than that.

Enzyme bands are cumulative tokens ("above 1x", "above 2x", ... the upper limit), so a rise adds a token and a
fall only removes some.
"""

from __future__ import annotations

import hashlib

from .rules import Assessment

__all__ = ["fingerprint", "is_news", "MATERIAL_PHENOTYPES", "enzyme_band"]

MATERIAL_PHENOTYPES = ("ild", "anti_mda5", "cancer", "imnm", "skin_predominant", "lung_function_falling")
# Multiples of the upper limit of normal that count as a different level of activity.
_BANDS = (1.0, 2.0, 5.0, 10.0)


def enzyme_band(value: float | None, upper: float | None) -> int | None:
    """0 within range; 1 above it, 2 above twice it, 3 above five times, 4 above ten times; None unknown."""
    if value is None or upper is None or upper <= 0:
        return None
    return sum(1 for b in _BANDS if value > b * upper)


def _tokens(a: Assessment, kind: str) -> set[str]:
    """The material facts behind one card kind. Each kind on what drives *it*: a pathway card on its situation,
    the safety card on its checks and the drafts they are for, the main and urgent cards on everything below."""
    if kind.startswith("pathway-"):
        return {f"route:{a.route}"}
    drafts = {f"draft:{r.option.id}" for r in a.drafts}
    urgent = {f"urgent-agent:{x.rxnorm_in}" for x in a.urgent.agents} if a.urgent is not None else set()
    if kind == "safety":
        return {f"check:{i.caution.id}:{int(i.open)}" for i in a.safety} | drafts | urgent
    out = {f"route:{a.route}"} | drafts | urgent
    out |= {f"failed:{s.therapy_class}" for s in a.failed}
    out |= {f"in-progress:{s.therapy_class}" for s in a.in_progress}
    raised = a.activity.raised_enzyme
    if raised is not None:
        band = enzyme_band(raised.latest.value, raised.latest.reference_high) or 1
        out |= {"active"} | {f"enzyme:{raised.group}:>={n}" for n in range(1, band + 1)}
    if a.activity.lung_decline is not None:
        out |= {"active", "lung-falling"}
    if a.activity.relapse is not None:
        out |= {"active", "relapse"}
    out |= {f"phenotype:{p}" for p in a.phenotypes if p in MATERIAL_PHENOTYPES}
    out |= {f"condition:{c}" for c in a.conditions}
    out |= {"statin"} if a.statins else set()
    out |= {f"unsafe:{o.id}" for o, _ in a.removed}
    # The "while taking" line of the main card: a new check (e.g. PJP prophylaxis now indicated) is news.
    out |= {f"while-taking:{i.caution.id}" for i in a.safety if i.caution.kind == "monitoring"}
    if a.urgent is not None and a.urgent.critical:
        out.add("urgent:critical")
    return out


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def fingerprint(a: Assessment, kind: str, of: str = "") -> str:
    """``of``: what else makes the card the same card (an order-time card: the draft order it is about)."""
    tokens = {f"kind:{kind}", f"of:{of}"} | _tokens(a, kind)
    return " ".join(sorted(_hash(t) for t in tokens))


def is_news(new: str, stored: str) -> bool:
    """The new fingerprint holds a material fact the stored one does not."""
    return not set(new.split()) <= set(stored.split())
