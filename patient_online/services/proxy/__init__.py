"""Proxy access: ask to act for someone, reception's review, consent, switching, ending, and the age rules.

Design rules 17, 18 and 19. Every change writes its audit event in the same transaction, and tells the
people concerned by email (the proxy, and the patient when they have an account of their own).

- ``requests``, ``consent``, ``ending``: the patient's side (asking, the /proxy page, saying yes or no, ending);
- ``review``, ``approve``, ``refuse``, ``suspend``: reception's side;
- ``age_rules``: the daily job (``proxies review``).
"""

from __future__ import annotations

from patient_online.domain.proxy import ProxyBasis, ProxyStatus

from .age_rules import AgeRulesReport, apply_age_rules
from .approve import Approval, approve_proxy, record_competence
from .common import LEVELS, LinkChange, allowed_levels, proxy_offered
from .consent import give_consent, refuse_consent
from .ending import end_link
from .refuse import reject_proxy
from .requests import (
    ProxyOverview,
    ProxyRequest,
    link_for,
    proxy_overview,
    request_proxy,
    switch_acting_for,
    switch_choices,
)
from .review import QueueLine, ReviewView, practice_links, review_view
from .suspend import end_proxy_by_reception, reinstate_proxy, suspend_proxy

__all__ = [
    "LEVELS",
    "AgeRulesReport",
    "Approval",
    "LinkChange",
    "ProxyBasis",
    "ProxyOverview",
    "ProxyRequest",
    "ProxyStatus",
    "QueueLine",
    "ReviewView",
    "allowed_levels",
    "apply_age_rules",
    "approve_proxy",
    "end_link",
    "end_proxy_by_reception",
    "give_consent",
    "link_for",
    "practice_links",
    "proxy_offered",
    "proxy_overview",
    "record_competence",
    "refuse_consent",
    "reinstate_proxy",
    "reject_proxy",
    "request_proxy",
    "review_view",
    "suspend_proxy",
    "switch_acting_for",
    "switch_choices",
]
