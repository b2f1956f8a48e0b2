"""A staff read of a consenting patient's archive on the shared case (tests.support.archives.CASE),
for the tests of what a read costs, on whichever database they run."""

from __future__ import annotations

from health_records import services
from tests.support.archives import CASE, sample_archive


def consenting(owner):
    """``owner`` with an archive they consent to share with 120."""
    services.archive_put(owner=owner, data=sample_archive(consent_share_with_120=True))
    return owner


def read_on_case(patient, reader, purpose: str = "care"):
    return services.archive_read_for_grant(patient=patient, reader=reader, case_ref=CASE, purpose=purpose)
