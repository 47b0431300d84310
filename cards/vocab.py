"""Vocabularies shared with mappings/ (the contract) and the ones cards/ defines itself.

The therapy class ids are mappings' own (``mappings.terminology.REQUIRED_CLASSES``); the knowledge loader
checks the YAML files against them without loading any of mappings' data.
"""

from __future__ import annotations

from mappings.terminology import REQUIRED_CLASSES

# Therapy class ids exactly as mappings/ emits them in TrialHistory.therapy_class: mappings' own list (a
# constant; importing it loads no data file).
CLASS_IDS: frozenset[str] = frozenset(REQUIRED_CLASSES)

# Diagnosis groups that make a patient "someone with myositis" (who gets cards at all).
MYOSITIS_GROUPS: frozenset[str] = frozenset(
    {
        "dermatomyositis_adult",
        "polymyositis",
        "dermatopolymyositis_unspecified",
        "dm_pm_with_respiratory_involvement",
        "dm_pm_with_myopathy",
        "clinically_amyopathic_dermatomyositis",
        "juvenile_dermatomyositis",
        "antisynthetase_syndrome",
        "immune_mediated_necrotizing_myopathy",
        "inclusion_body_myositis",
        "overlap_myositis",
        "myositis_parent",
    }
)

# Groups that mean dermatomyositis specifically (cancer screening, card wording).
DM_GROUPS: frozenset[str] = frozenset(
    {
        "dermatomyositis_adult",
        "clinically_amyopathic_dermatomyositis",
        "juvenile_dermatomyositis",
    }
)
PM_GROUPS: frozenset[str] = frozenset({"polymyositis"})

DIAGNOSIS_GROUPS: frozenset[str] = MYOSITIS_GROUPS | {
    "interstitial_lung_disease",
    "malignancy",
    "pregnancy",
    "hepatitis_b",
    "latent_tuberculosis",
    "drug_induced_or_steroid_myopathy",
    "dysphagia",
    "cutaneous_ulceration",
}

LAB_GROUPS: frozenset[str] = frozenset(
    {
        "creatine_kinase",
        "aldolase",
        "alt",
        "ast",
        "ldh",
        "anti_jo1",
        "anti_mi2",
        "anti_mda5",
        "anti_tif1_gamma",
        "anti_nxp2",
        "anti_srp",
        "anti_hmgcr",
        "other_antisynthetase_ab",
        "hbsag",
        "hbcab_total",
        "tb_igra",
        "tpmt",
        "pregnancy_test",
        "fvc",
        "dlco",
    }
)

# Phenotypes the knowledge base can favour an option for (derived by cards/phenotype.py).
PHENOTYPES: frozenset[str] = frozenset(
    {
        "ild",
        "antisynthetase",
        "anti_mda5",
        "skin_ulceration",
        "dysphagia",
        "anti_srp",
        "anti_hmgcr",
        "imnm",
        "cancer",
        "anti_tif1_gamma",
        # From the record's trend, not a code: lung function falling by the cited margin (thresholds.yaml).
        "lung_function_falling",
        # Amyopathic DM coded and muscle enzymes not raised (cards/rules.py).
        "skin_predominant",
    }
)

# Patient conditions an option can be avoided for.
AVOID_CONDITIONS: frozenset[str] = frozenset(
    {
        "pregnancy",
        "hepatitis_b",
        "latent_tuberculosis",
        "active_infection",
        "active_cancer",
    }
)

# Special situations with their own pathway card.
SITUATIONS: frozenset[str] = frozenset(
    {
        "ibm",
        "juvenile",
        "imnm",
        "anti_mda5",
        "anti_mda5_without_ild",
        "ild_without_lung_function",
        "pregnancy",
        "cancer",
        "new_dm",
        "many_failures",
        "urgent_referral",
        "stop_antiproliferative",
    }
)

STAGES: frozenset[str] = frozenset({"first_line", "next_line"})
EVIDENCE_LEVELS: tuple[str, ...] = ("high", "moderate", "low", "very_low")  # best first
STUDY_TYPES: frozenset[str] = frozenset(
    {
        "RCT",
        "open-label",
        "cohort",
        "case series",
        "case report",
        "guideline",
        "expert opinion",
    }
)
TAGS: frozenset[str] = frozenset({"evidence", "seed-only", "convention", "unverified"})
VERIFICATION: frozenset[str] = frozenset({"verified", "partial", "not_verified"})
INDICATORS: frozenset[str] = frozenset({"info", "warning", "critical"})
# screening: before starting a drafted class; monitoring: while a class is taken; reassess: before escalating.
CAUTION_KINDS: frozenset[str] = frozenset({"screening", "monitoring", "reassess"})
REASSESS_WHEN: frozenset[str] = frozenset(
    {
        "always",
        "on_glucocorticoid",
        "dermatomyositis",
        "pjp_risk",
        "not_imnm",  # never tell a patient coded with IMNM to exclude IMNM
        "no_cancer_recorded",  # no "re-screen for cancer" when cancer is already recorded
        "enzymes_in_range",  # steroid myopathy: CK is not raised in it (the cited review), so only with enzymes in range
        "glucocorticoid_long_course",  # bone protection: glucocorticoid for 3 months or more
    }
)
OPTION_MODES: frozenset[str] = frozenset({"start", "add_on", "replace"})
# Every number a rule reads from thresholds.yaml (the loader requires each, and no other).
THRESHOLDS: frozenset[str] = frozenset(
    {
        "activity-lab-recent-days",
        "enzyme-clearly-falling-fraction",
        "fvc-decline-points",
        "dlco-decline-points",
        "lung-decline-window-days",
        "cancer-risk-age",
        "pregnancy-possible-age-min",
        "pregnancy-possible-age-max",
        "many-failures",
        "responder-normal-days",
        "response-delay-weeks",
        "new-diagnosis-days",
        "glucocorticoid-long-course-weeks",
        "pregnancy-test-days",
        "pregnancy-test-negative-days",
    }
)
# remove: dropped (the card says why); hold: listed, never drafted (e.g. "after oncology review"); warn: flagged.
AVOID_EFFECTS: frozenset[str] = frozenset({"remove", "hold", "warn"})
# What a risk factor of a "when: pjp_risk" caution looks for in the facts (cards/rules.py).
RISK_FACTOR_KINDS: frozenset[str] = frozenset({"ongoing_class", "phenotype", "daily_dose_above"})
# Placeholders each kind's shown_as text may use, filled from the facts (never record free text).
RISK_FACTOR_FIELDS: dict[str, frozenset[str]] = {
    "ongoing_class": frozenset({"agents"}),
    "phenotype": frozenset(),
    "daily_dose_above": frozenset({"ingredient", "dose", "threshold"}),
}

RXNORM_SYSTEM = "http://www.nlm.nih.gov/research/umls/rxnorm"
