"""Load the Zhengzhou demo. Idempotent: a second run with the same password changes nothing."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Role, User
from dispatch import demo_data
from dispatch.models import Ambulance, CrewMember, Hospital, HospitalStaff, Station
from dispatch.services import hospital_set_status
from health_records import selectors as archive_selectors
from health_records import services as health_services
from health_records import synthetic


# Free emergency-department beds a demo hospital opens with (ZHENGZHOU.md publishes none): plausible
# by size, the big tertiary campuses most. Set only when the hospital is created: after that the
# number is live data the hospital's board owns, and seeding again must not overwrite it.
ED_FREE_BEDS = {
    "FAHZU-HY": 12, "FAHZU-ZD": 10, "HPPH": 10, "ZZ1PH": 8, "ZZCH": 7, "FUWAI-CC": 6, "HCH-E": 6, "ZZPH": 6,
    "ZZU2": 6, "HUCM1": 5, "ZZU5": 5, "ZZ7PH": 5, "ZZU3": 4, "HCHEST": 4, "HPTCM": 4, "HCANCER": 3, "HUIJI": 3,
}
DEFAULT_ED_FREE_BEDS = 4


def unit_phone(station_number: int, index: int) -> str:
    """A demo unit's on-board mobile: 139 0371 (Zhengzhou's area code) + station + unit, so a
    number read out on the phone says which unit it is. Fictional, but a valid mainland mobile."""
    return f"1390371{station_number:02d}{index:02d}"


class Command(BaseCommand):
    help = "Load the Zhengzhou demo: hospitals, stations, ambulances and staff accounts (郑州演示数据)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            default=settings.DEMO_PASSWORD,
            help=f"Password for every demo account (default: {settings.DEMO_PASSWORD}).",
        )
        parser.add_argument(
            "--reset-ed-status",
            action="store_true",
            help="Put every demo hospital's emergency department back to open with its demo free beds "
            "(otherwise live ED status is left alone; a demo loaded before free beds were seeded has 0).",
        )

    def handle(self, *args, password: str, reset_ed_status: bool = False, **options):
        if len(password) < 8:
            self.stderr.write(self.style.ERROR("--password must be at least 8 characters"))
            raise SystemExit(2)
        self.changes = 0
        # Demo accounts share one password, so hash it once: a strong hash takes ~0.3 s per call.
        self.encoded = make_password(password)
        self.verified: set[str] = set()
        with transaction.atomic():
            hospitals = {code: self._hospital(code, *rest) for code, *rest in demo_data.HOSPITALS}
            if reset_ed_status:
                for code, hospital in hospitals.items():
                    # Through the service: open consoles see the change like any board's.
                    beds = ED_FREE_BEDS.get(code, DEFAULT_ED_FREE_BEDS)
                    if (hospital.ed_status, hospital.ed_free_beds) != ("open", beds):
                        hospital_set_status(hospital_id=hospital.pk, ed_status="open", ed_free_beds=beds)
                        self.changes += 1
            for number, (code, name_zh, name_en, district, lat, lon) in enumerate(demo_data.STATIONS, start=1):
                station = self._upsert(
                    Station, {"code": code}, name_zh=name_zh, name_en=name_en, district=district, lat=lat, lon=lon
                )
                for index in range(1, demo_data.UNITS_PER_STATION + 1):
                    self._unit(station, index, password, phone=unit_phone(number, index))
            for code, hospital in hospitals.items():
                user = self._user(code, password, Role.HOSPITAL, hospital.name_zh)
                self._upsert(HospitalStaff, {"user": user}, hospital=hospital)
            for username in demo_data.DISPATCHERS:
                self._user(username, password, Role.DISPATCHER, "Dispatcher 调度员")
            for username in demo_data.SUPERVISORS:
                supervisor = self._user(username, password, Role.DISPATCHER, "Supervisor 值班主任")
                if not supervisor.supervisor:
                    supervisor.supervisor = True
                    supervisor.save(update_fields=["supervisor"])
                    self.changes += 1
            phone, name = demo_data.DEMO_CITIZEN
            citizen = self._user(phone, password, Role.CITIZEN, name, phone=phone)
            self._demo_archive(citizen)
        self.stdout.write(
            self.style.SUCCESS(
                f"Zhengzhou demo: {Hospital.objects.count()} hospitals, {Station.objects.count()} stations, "
                f"{Ambulance.objects.count()} ambulances; {self.changes} row(s) changed."
            )
        )
        self.stdout.write(
            f"Logins (password {password!r}): dispatcher1, supervisor1; crew = call sign (e.g. "
            f"{demo_data.call_sign(demo_data.STATIONS[0][0], 1)}); hospital = code (e.g. FAHZU-HY); "
            f"citizen = {demo_data.DEMO_CITIZEN[0]}"
        )

    def _demo_archive(self, citizen: User) -> None:
        # A synthetic archive, shared with 120, so the demo shows what a crew sees. Left alone
        # once it exists: the citizen may have edited it.
        if archive_selectors.has_archive(owner=citizen):
            return
        data = next(synthetic.archives(1, seed=120))
        data.pop("verified_at", None)  # the import format carries it; the API sets it itself
        data.update(phone=citizen.phone, consent_share_with_120=True)
        health_services.archive_put(owner=citizen, data=data)
        self.changes += 1

    def _hospital(self, code, name_zh, name_en, lat, lon, capabilities) -> Hospital:
        # Capabilities and coordinates come from the demo file; live ED status is left alone.
        return self._upsert(
            Hospital, {"code": code}, name_zh=name_zh, name_en=name_en, lat=lat, lon=lon, capabilities=capabilities,
            _create_only={"ed_free_beds": ED_FREE_BEDS.get(code, DEFAULT_ED_FREE_BEDS)},
        )

    def _unit(self, station: Station, index: int, password: str, *, phone: str) -> None:
        sign = demo_data.call_sign(station.code, index)
        unit = Ambulance.objects.filter(call_sign=sign).first()
        if unit is None:
            # Parked around the station, a few tens of metres apart.
            unit = Ambulance.objects.create(
                call_sign=sign,
                station=station,
                level="micu" if index == 1 else "als",
                lat=station.lat + 0.0004 * index,
                lon=station.lon + 0.0004 * index,
                phone=phone,
            )
            self.changes += 1
        elif not unit.phone:
            # A demo loaded before units had phones gets one; a number an operator set is kept.
            unit.phone = phone
            unit.save(update_fields=["phone"])
            self.changes += 1
        user = self._user(sign, password, Role.CREW, f"{sign} crew 车组")
        self._upsert(CrewMember, {"user": user}, ambulance=unit)

    def _user(self, username: str, password: str, role: str, name: str, phone: str | None = None) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(username=username, role=role, first_name=name, phone=phone, password=self.encoded)
            user.save()
            self.changes += 1
            return user
        changed = False
        if user.role != role or user.first_name != name or user.phone != phone:
            user.role, user.first_name, user.phone = role, name, phone
            changed = True
        if user.password not in self.verified:
            if check_password(password, user.password):
                self.verified.add(user.password)
            else:
                user.password = self.encoded
                changed = True
        if changed:
            user.save()
            self.changes += 1
        return user

    def _upsert(self, model, lookup: dict, _create_only: dict | None = None, **values):
        obj = model.objects.filter(**lookup).first()
        if obj is None:
            self.changes += 1
            return model.objects.create(**lookup, **values, **(_create_only or {}))
        stale = {k: v for k, v in values.items() if getattr(obj, k) != v}
        if stale:
            for k, v in stale.items():
                setattr(obj, k, v)
            obj.save(update_fields=list(stale))
            self.changes += 1
        return obj
