"""GP Connect identifiers: systems, extension URLs, interaction ids and Spine error codes.

Shared by the adapter and the simulator so both speak the same names; nothing here holds data.
"""

from __future__ import annotations

from typing import Final

FHIR_JSON: Final = "application/fhir+json"

# Identifier and code systems
NHS_NUMBER_SYSTEM: Final = "https://fhir.nhs.uk/Id/nhs-number"
ODS_SYSTEM: Final = "https://fhir.nhs.uk/Id/ods-organization-code"
SDS_USER_SYSTEM: Final = "https://fhir.nhs.uk/Id/sds-user-id"
SDS_ROLE_PROFILE_SYSTEM: Final = "https://fhir.nhs.uk/Id/sds-role-profile-id"
ORG_TYPE_SYSTEM: Final = "https://fhir.nhs.uk/STU3/CodeSystem/GPConnect-OrganisationType-1"
SNOMED: Final = "http://snomed.info/sct"
SPINE_ERROR_SYSTEM: Final = "https://fhir.nhs.uk/STU3/ValueSet/Spine-ErrorOrWarningCode-1"
UUID_IDENTIFIER_SYSTEM: Final = "https://tools.ietf.org/html/rfc4122"
SDS_JOB_ROLE_SYSTEM: Final = "https://fhir.nhs.uk/STU3/CodeSystem/CareConnect-SDSJobRoleName-1"
ACT_CODE_SYSTEM: Final = "http://hl7.org/fhir/v3/ActCode"
CONFIDENTIALITY_SYSTEM: Final = "http://hl7.org/fhir/v3/Confidentiality"
PRESCRIPTION_ORDERING_PARAMETER: Final = (
    "https://fhir.nhs.uk/England/CodeSystem/England-PFSPrescriptionOrderingParameter"
)
COURSE_OF_THERAPY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/medicationrequest-course-of-therapy"

# Extensions
EXT_BOOKING_ORG: Final = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-BookingOrganisation-1"
EXT_CANCELLATION_REASON: Final = (
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-AppointmentCancellationReason-1"
)
EXT_DELIVERY_CHANNEL: Final = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-DeliveryChannel-2"
EXT_PRACTITIONER_ROLE: Final = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-GPConnect-PractitionerRole-1"
EXT_VACCINATION_PROCEDURE: Final = (
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-VaccinationProcedure-1"
)
NULL_FLAVOUR: Final = "http://hl7.org/fhir/v3/NullFlavor"
EXT_LIST_WARNING: Final = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-ListWarningCode-1"
EXT_PRESCRIPTION_TYPE: Final = (
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-PrescriptionType-1"
)
EXT_REPEAT_INFORMATION: Final = (
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-MedicationRepeatInformation"
)
EXT_STU3_REPEAT_INFORMATION: Final = (
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-MedicationRepeatInformation-1"
)
EXT_QUANTITY_TEXT: Final = (
    "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-CareConnect-GPC-MedicationQuantityText-1"
)
# Gateway-defined: the SNOMED CT codes that steer online access, carried on the Patient resource.
EXT_ONLINE_ACCESS_FLAG: Final = "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-PatientOnline-AccessFlag-1"

# Delivery channels (Extension-GPConnect-DeliveryChannel-2 valueCode)
CHANNEL_IN_PERSON: Final = "In-person"
CHANNEL_TELEPHONE: Final = "Telephone"
CHANNEL_VIDEO: Final = "Video"

# Repeat prescription request (Task.code)
TASK_CODE_REPEAT: Final = "103742009"
TASK_CODE_DISPLAY: Final = "Request for repeat prescription"
# The prescriptions API has no element for "collect a paper prescription from the surgery" (Task.input knows
# only preferred-performer, a pharmacy's ODS code): the choice goes to the practice as a note of its own on each
# Task, written by the gateway (not the patient), in words practice staff read, and is recognised when read back.
COLLECTION_NOTE_AUTHOR: Final = "Patient Online"
COLLECTION_SURGERY_NOTE: Final = (
    "Collection: the patient will collect a paper prescription from the surgery. Do not send it to a pharmacy."
)


class Interaction:
    """Ssp-InteractionID values, one per interaction (GP Connect 1.2.x and 1.6 URN form)."""

    SEARCH_PATIENT: Final = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient-1"
    SEARCH_SLOTS: Final = "urn:nhs:names:services:gpconnect:fhir:rest:search:slot-1"
    CREATE_APPOINTMENT: Final = "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment-1"
    READ_APPOINTMENT: Final = "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment-1"
    CANCEL_APPOINTMENT: Final = "urn:nhs:names:services:gpconnect:fhir:rest:cancel:appointment-1"
    AMEND_APPOINTMENT: Final = "urn:nhs:names:services:gpconnect:fhir:rest:update:appointment-1"
    READ_PRACTITIONER: Final = "urn:nhs:names:services:gpconnect:fhir:rest:read:practitioner-1"
    READ_LOCATION: Final = "urn:nhs:names:services:gpconnect:fhir:rest:read:location-1"
    READ_ORGANIZATION: Final = "urn:nhs:names:services:gpconnect:fhir:rest:read:organization-1"
    SEARCH_PATIENT_APPOINTMENTS: Final = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments-1"
    STRUCTURED_RECORD: Final = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getstructuredrecord-1"
    # The patient-facing prescriptions API has no Spine interaction ids; these follow the same pattern.
    SEARCH_MEDICATION_REQUESTS: Final = "urn:nhs:names:services:gpconnect:fhir:rest:search:medicationrequest-1"
    CREATE_TASK: Final = "urn:nhs:names:services:gpconnect:fhir:rest:create:task-1"
    SEARCH_TASKS: Final = "urn:nhs:names:services:gpconnect:fhir:rest:search:task-1"
    UPDATE_TASK: Final = "urn:nhs:names:services:gpconnect:fhir:rest:update:task-1"


# JWT requested_scope per interaction
READ_SCOPE_PATIENT: Final = "patient/*.read"
WRITE_SCOPE_PATIENT: Final = "patient/*.write"
READ_SCOPE_ORG: Final = "organization/*.read"

SCOPES: Final[dict[str, str]] = {
    Interaction.SEARCH_PATIENT: READ_SCOPE_PATIENT,
    Interaction.SEARCH_SLOTS: READ_SCOPE_ORG,
    Interaction.CREATE_APPOINTMENT: WRITE_SCOPE_PATIENT,
    Interaction.READ_APPOINTMENT: READ_SCOPE_PATIENT,
    Interaction.CANCEL_APPOINTMENT: WRITE_SCOPE_PATIENT,
    Interaction.AMEND_APPOINTMENT: WRITE_SCOPE_PATIENT,
    Interaction.READ_PRACTITIONER: READ_SCOPE_ORG,
    Interaction.READ_LOCATION: READ_SCOPE_ORG,
    Interaction.READ_ORGANIZATION: READ_SCOPE_ORG,
    Interaction.SEARCH_PATIENT_APPOINTMENTS: READ_SCOPE_PATIENT,
    Interaction.STRUCTURED_RECORD: READ_SCOPE_PATIENT,
    Interaction.SEARCH_MEDICATION_REQUESTS: READ_SCOPE_PATIENT,
    Interaction.CREATE_TASK: WRITE_SCOPE_PATIENT,
    Interaction.SEARCH_TASKS: READ_SCOPE_PATIENT,
    Interaction.UPDATE_TASK: WRITE_SCOPE_PATIENT,
}

# Access Record: Structured list codes (List.code, SNOMED CT)
LIST_ALLERGIES: Final = "886921000000105"
LIST_ENDED_ALLERGIES: Final = "1103671000000101"
LIST_MEDICATIONS: Final = "933361000000108"
LIST_PROBLEMS: Final = "717711000000103"
LIST_IMMUNISATIONS: Final = "1102181000000102"
LIST_CONSULTATIONS: Final = "1149501000000101"
LIST_INVESTIGATIONS: Final = "887191000000108"

# Structured record parameters
PARAM_NHS_NUMBER: Final = "patientNHSNumber"
PARAM_ALLERGIES: Final = "includeAllergies"
PARAM_MEDICATION: Final = "includeMedication"
PARAM_PROBLEMS: Final = "includeProblems"
PARAM_IMMUNISATIONS: Final = "includeImmunisations"
PARAM_INVESTIGATIONS: Final = "includeInvestigations"
PARAM_CONSULTATIONS: Final = "includeConsultations"

# Spine error codes
DUPLICATE_REJECTED: Final = "DUPLICATE_REJECTED"
PATIENT_NOT_FOUND: Final = "PATIENT_NOT_FOUND"
NO_PATIENT_CONSENT: Final = "NO_PATIENT_CONSENT"
NO_RECORD_FOUND: Final = "NO_RECORD_FOUND"
BAD_REQUEST: Final = "BAD_REQUEST"
ACCESS_DENIED: Final = "ACCESS_DENIED"
INVALID_RESOURCE: Final = "INVALID_RESOURCE"
INVALID_PARAMETER: Final = "INVALID_PARAMETER"
INVALID_NHS_NUMBER: Final = "INVALID_NHS_NUMBER"
INVALID_IDENTIFIER_SYSTEM: Final = "INVALID_IDENTIFIER_SYSTEM"
REFERENCE_NOT_FOUND: Final = "REFERENCE_NOT_FOUND"
FHIR_CONSTRAINT_VIOLATION: Final = "FHIR_CONSTRAINT_VIOLATION"
INTERNAL_SERVER_ERROR: Final = "INTERNAL_SERVER_ERROR"
NOT_IMPLEMENTED: Final = "NOT_IMPLEMENTED"

MAX_SLOT_WINDOW_DAYS: Final = 14
# Retrieve a patient's appointments: how many days after today the adapter asks for (start=ge<today> and
# start=le<today + this>). The specification sets no maximum; providers may refuse long ranges.
APPOINTMENT_SEARCH_DAYS: Final = 180
# How long referenced Practitioner, Location and Organization resources are kept per practice link (seconds).
REFERENCE_CACHE_SECONDS: Final = 600.0
DESCRIPTION_MAX: Final = 100
COMMENT_MAX: Final = 500
JWT_LIFETIME_SECONDS: Final = 300
