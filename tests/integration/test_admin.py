"""System administration: add practices and choose each one's clinical-system adapter, options validated
and secrets stored encrypted."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from patient_online.models import AuditEvent, Practice


def test_admin_adds_a_practice(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("admin@example.com")
    bad = client.submit("/admin/practices", {"ods_code": "12345", "name": "Bad Code Surgery"})
    assert "a letter and 5 digits" in bad.get_data(as_text=True)
    good = client.submit(
        "/admin/practices", {"ods_code": "b86001", "name": "Moorside Practice", "phone": "01632 960 999"}
    )
    assert good.headers["Location"].endswith("/admin/practices/B86001")
    practice = session.scalar(select(Practice).where(Practice.ods_code == "B86001"))
    assert practice.adapter_name == "demo" and {s.service for s in practice.switches} == {
        "appointments",
        "prescriptions",
        "record",
        "proxy",
    }


def test_gpconnect_options_are_validated_and_secrets_encrypted(client: Any, session: Any, sign_in: Any) -> None:
    sign_in("admin@example.com")
    page = "/admin/practices/Y02002?adapter=gpconnect"
    bad = client.submit("/admin/practices/Y02002", {"adapter": "gpconnect", "option-base_url": "not a url"}, page=page)
    text = bad.get_data(as_text=True)
    assert "Enter a full web address" in text
    good = client.submit(
        "/admin/practices/Y02002",
        {
            "adapter": "gpconnect",
            "option-base_url": "https://gpconnect.example.test/fhir",
            "option-provider_asid": "918999198993",
            "option-consumer_asid": "200000000359",
            "option-api_key": "s3cret-key",
        },
        page=page,
    )
    assert good.status_code == 302
    practice = session.scalar(select(Practice).where(Practice.ods_code == "Y02002"))
    assert practice.adapter_name == "gpconnect"
    assert practice.adapter_options["api_key"] != "s3cret-key" and practice.adapter_options["api_key"]
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "practice.adapter_set")).first()
    assert "s3cret-key" not in str(event.detail)
    form = client.get("/admin/practices/Y02002").get_data(as_text=True)
    assert "s3cret-key" not in form


def test_set_adapter_command(app: Any, session: Any) -> None:
    result = app.test_cli_runner().invoke(
        args=["practice", "set-adapter", "Y02002", "gpconnect", "--option", "base_url=ftp://x"]
    )
    assert result.exit_code != 0 and "base_url" in result.output
    result = app.test_cli_runner().invoke(
        args=[
            "practice",
            "set-adapter",
            "Y02002",
            "gpconnect",
            "--option",
            "base_url=http://127.0.0.1:8090",
            "--option",
            "provider_asid=918999198993",
            "--option",
            "consumer_asid=200000000359",
        ]
    )
    assert result.exit_code == 0, result.output
