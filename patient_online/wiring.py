"""Where the service layer's parts are made from the app's settings, and a unit of work found per request.

Services import no Flask: the app builds their parts here (the clinical systems of all practices, the slot
search memory, the notifier) and hands each use case a unit of work made from them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from flask import Flask, Response, current_app, g, has_request_context, url_for

from patient_online.adapters import deadline, gpconnect
from patient_online.domain.identity import IdentityProvider
from patient_online.domain.ports import ClinicalSystem
from patient_online.extensions import db
from patient_online.services import system_ids
from patient_online.services.appointment_memory import PatientAppointmentMemory, RedisChanges
from patient_online.services.clinical import ClinicalSystems
from patient_online.services.notify import notifier_from
from patient_online.services.slot_cache import SlotSearchCache
from patient_online.services.unit_of_work import SqlAlchemyUnitOfWork, UnitOfWorkFactory

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    appointments = _appointment_memory(app)
    systems = ClinicalSystems.with_breakers(
        {
            "session_factory": db.new_session,
            "read_session_factory": db.new_read_session,
            "connect_timeout": float(app.config["ADAPTER_CONNECT_TIMEOUT"]),
            "read_timeout": float(app.config["ADAPTER_READ_TIMEOUT"]),
            "gpconnect": gpconnect.Deployment.from_settings(app.config),
            "patient_id_found": _patient_id_store(app),
        },
        failure_threshold=int(app.config["ADAPTER_BREAKER_FAILURES"]),
        cool_down=float(app.config["ADAPTER_BREAKER_COOL_DOWN"]),
        redis_url=str(app.config.get("REDIS_URL") or ""),
        budget=float(app.config["CLINICAL_PAGE_BUDGET_SECONDS"]),
        max_calls=int(app.config.get("ADAPTER_MAX_CALLS_PER_PRACTICE", 0)),
        place_wait=float(app.config["ADAPTER_PLACE_WAIT_SECONDS"]),
        slow_call=float(app.config["ADAPTER_SLOW_CALL_SECONDS"]),
        changed=appointments.forget,
    )
    app.extensions["clinical_systems"] = systems
    _init_page_deadline(app)
    app.extensions["uow_factory"] = UnitOfWorkFactory(
        clinical_systems=systems,
        slot_cache=SlotSearchCache(float(app.config["SLOT_SEARCH_CACHE_SECONDS"]), appointments=appointments),
        notifier=lambda: notifier_from(app.config),
        settings=app.config,
    )
    app.after_request(_send_security_codes_now)


def _appointment_memory(app: Flask) -> PatientAppointmentMemory:
    """The finding pages' memory of patients' own appointments; with Redis, a change made by any process is seen
    by every other at once."""
    seconds = float(app.config["FINDING_APPOINTMENTS_MEMORY_SECONDS"])
    redis_url = str(app.config.get("REDIS_URL") or "")
    if not redis_url or seconds <= 0:
        # Without Redis a booking made in one worker could not make the others forget: nothing is kept.
        return PatientAppointmentMemory(0)
    return PatientAppointmentMemory(seconds, changes=RedisChanges(redis_url, seconds, app.config["SECRET_KEY"]))


def _send_security_codes_now(response: Response) -> Response:
    """Security codes the request queued are tried at once, after its transaction (never failing the request:
    a code not sent now is sent by the outbox worker)."""
    found: SqlAlchemyUnitOfWork | None = g.get("_uow")
    if found is not None and found.urgent_messages and current_app.config.get("MESSAGES_SEND_NOW", True):
        from patient_online.services import messages

        references, found.urgent_messages[:] = list(found.urgent_messages), []
        messages.send_now_in(uow_factory(), db.new_session(), references)
    return response


def _init_page_deadline(app: Flask) -> None:
    """Every request gets one budget for all its clinical calls (CLINICAL_PAGE_BUDGET_SECONDS), however many
    calls and retries it makes; a call past it fails at once with "your practice's system is slow"."""
    budget = float(app.config["CLINICAL_PAGE_BUDGET_SECONDS"])

    @app.before_request
    def _start_deadline() -> None:
        g._clinical_deadline = deadline.start(budget)

    @app.teardown_request
    def _stop_deadline(_error: BaseException | None) -> None:
        deadline.stop(g.pop("_clinical_deadline", None))


def _patient_id_store(app: Flask) -> Callable[[str, str, str], None]:
    """What an adapter calls when a practice's system gave a patient a new id (it found them again by NHS number
    after the old id was unknown): stored on the patient in a session of its own, so the next request uses it."""

    def store(practice_ods: str, nhs_number: str, logical_id: str) -> None:
        session = db.new_session()
        try:
            system_ids.record_found_id(uow_factory(app)(session), practice_ods, nhs_number, logical_id)
        except Exception:  # the id is kept by the adapter meanwhile and looked up again after a restart
            log.warning("Could not store a patient's new id at practice %s", practice_ods, exc_info=True)
        finally:
            session.close()

    return store


def clinical_systems(app: Flask | None = None) -> ClinicalSystems:
    systems: ClinicalSystems = (app or current_app).extensions["clinical_systems"]
    return systems


def override_clinical(app: Flask, practice_ods: str, system: ClinicalSystem | None) -> None:
    """Use ``system`` for one practice instead of its configured adapter (tests and fault drills)."""
    clinical_systems(app).override(practice_ods, system)


def uow_factory(app: Flask | None = None) -> UnitOfWorkFactory:
    factory: UnitOfWorkFactory = (app or current_app).extensions["uow_factory"]
    return factory


def uow() -> SqlAlchemyUnitOfWork:
    """The unit of work of the current request (or app context): one per request, on its database session."""
    found: SqlAlchemyUnitOfWork | None = g.get("_uow")
    if found is None:
        request_id = str(g.get("request_id", "")) if has_request_context() else ""
        found = uow_factory()(db.session, request_id)
        g._uow = found
    return found


def nhs_login_client(app: Flask | None = None) -> IdentityProvider | None:
    """NHS login's OpenID Connect client, made once per app from its settings; None when NHS login is off."""
    app = app or current_app
    client: IdentityProvider | None = app.extensions.get("nhs_login_rp")
    if client is None:
        config = app.config
        if not config.get("NHS_LOGIN_ISSUER"):
            return None
        from patient_online.adapters.nhs_login import RelyingParty

        client = RelyingParty(
            issuer=config["NHS_LOGIN_ISSUER"],
            client_id=config["NHS_LOGIN_CLIENT_ID"],
            private_key_pem=Path(config["NHS_LOGIN_PRIVATE_KEY_PATH"]).read_text(),
            redirect_uri=config.get("NHS_LOGIN_REDIRECT_URI") or url_for("nhs_login.callback", _external=True),
            scopes=config["NHS_LOGIN_SCOPES"],
            vtr=config["NHS_LOGIN_VTR"],
        )
        app.extensions["nhs_login_rp"] = client
    return client
