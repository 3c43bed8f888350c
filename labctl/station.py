"""The station file — which instrument is at which address — and the one driver registry.

```yaml
instruments:
  smu:                       # the name protocols refer to (their `instrument:` field)
    driver: keithley2400
    address: GPIB0::24::INSTR   # any VISA resource string
    visa_library: "@py"      # pyvisa-py; "@ivi" for a vendor VISA library
    timeout_ms: 5000
    baud_rate: 9600          # serial (ASRL) resources only
  afm:
    driver: nanonis          # an AFM controller's Nanonis TCP interface
    address: 192.168.1.20:6501
  cyc1:                      # a battery cycler channel: the protocol runs in the cycler's firmware
    driver: neware           # or biologic
    address: 192.168.1.50:502/1-1-3   # NEWARE: BTS PC host:port / devid-subdevid-chlid; Biologic: USB0/1
    username: admin
    password_env: NEWARE_PASSWORD     # environment variable with the BTS password (unset: "neware")
    step_file_dir: /mnt/bts/labctl    # where labctl writes step files; the BTS PC must read them …
    step_file_dir_on_bts: 'C:\\labctl' # … under this name (default: the same path)
    poll_interval_s: 5       # status + new points every 5 s
  chamber:                   # a climate chamber for set_temperature steps (the protocol's `chamber:`)
    driver: binder           # BINDER MB1 controller, MODBus (drivers.chamber)
    address: 192.168.1.20:10001
    min_setpoint_C: -40      # the chamber's set point range (its data sheet): refused outside
    max_setpoint_C: 180
    unit_id: 1               # MODBus slave address
    framing: rtu             # rtu (the chamber's own Ethernet interface) or tcp (a MODBus/TCP gateway)
notify:                      # optional: labctl.app.notify.NotifyConfig (event log, desktop, e-mail)
  email: {host: smtp.example.org, from: labctl@example.org, to: [operator@example.org]}
```

:data:`DRIVERS` is the one registry of drivers: each entry says what the driver is (its
role: a sourcemeter, an AFM controller, a cycler channel), how its address is checked, and
how it is opened. The station file's validation, :func:`open_instrument`, the GUI's
*Identify* (:func:`identify`) and the run path all go through it; nothing else chooses a
driver by its name.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from drivers.base import InstrumentError
from drivers.biologic import NATIVE_FORMAT as BIOLOGIC_FORMAT
from drivers.neware import NATIVE_FORMAT as NEWARE_FORMAT
from labctl.app.notify import NotifyConfig
from labctl.engine.policy import ReconnectPolicy
from labctl.yamlfile import FileError, load_model

Role = Literal["sourcemeter", "afm", "cycler", "chamber"]


@dataclass(frozen=True)
class DriverEntry:
    """One driver of the registry.

    ``open(config, **options)`` connects and returns the driver object (raising
    :class:`drivers.base.InstrumentLost` naming the address when it cannot be reached);
    ``check_address(address)`` raises ValueError with the expected form; ``native_format``
    and ``compile`` (step program, remark → native program text) exist for cyclers, which
    run a program in their own firmware. ``potentiostat(config, **options)``, where a cycler
    channel has it, opens the channel as a software-timed potentiostat instead: the run path
    does so for a program with steps no firmware program runs (:data:`labctl.steps.SOFTWARE_ONLY`:
    impedance, temperature, linear sweeps) — the role is chosen by the program.
    """

    name: str
    role: Role
    open: Callable[..., Any]
    check_address: Callable[[str], Any] | None = None
    native_format: str = ""
    compile: Callable[..., str] | None = None
    potentiostat: Callable[..., Any] | None = None


def _open_keithley2400(config: InstrumentConfig, **_options: Any) -> Any:
    from drivers.keithley2400 import Keithley2400

    return Keithley2400(config.address, visa_library=config.visa_library,
                        timeout_ms=config.timeout_ms, baud_rate=config.baud_rate)


def _open_nanonis(config: InstrumentConfig, **_options: Any) -> Any:
    from drivers.afm import NanonisAfm

    return NanonisAfm(config.address, timeout_s=config.timeout_ms / 1000)


def _check_nanonis(address: str) -> None:
    from drivers.afm import parse_address

    parse_address(address)


def _open_neware(config: InstrumentConfig, *, step_file_dir: str | Path | None = None, **_options: Any) -> Any:
    """``step_file_dir`` replaces the station's (a simulated BTS reads a temporary folder)."""
    from drivers.neware import NewareCycler

    folder = step_file_dir if step_file_dir is not None else config.step_file_dir
    if folder is None:
        raise FileError([f"{config.address}: step_file_dir: needed to hand step files to the BTS PC "
                         "(a folder both this PC and the BTS PC can read)"])
    # The BTS API allows 30 s per command (anchors §3.1): the default unless the station sets one.
    timeout_s = config.timeout_ms / 1000.0 if "timeout_ms" in config.model_fields_set else 30.0
    return NewareCycler.open(config.address, username=config.username, password=config.password(),
                             timeout_s=timeout_s, step_file_dir=folder,
                             step_file_dir_on_bts=config.step_file_dir_on_bts)


def _check_neware(address: str) -> None:
    from drivers.neware import parse_address

    parse_address(address)


def _compile_neware(program: Any, remark: str = "") -> str:
    from drivers.neware import compile_native

    return compile_native(program, remark=remark)


def _open_biologic(config: InstrumentConfig, *, journal_path: str | Path | None = None,
                   backend: Any = None, **_options: Any) -> Any:
    """``journal_path``: where the channel journals the points it reads (BioLogic's memory
    gives each point out once); ``backend``: a Development-Package backend (default: the real
    DLL through easy-biologic)."""
    from drivers.biologic import BiologicBackendMissing, EasyBiologicBackend
    from drivers.biologic import BiologicCycler

    if backend is None:
        try:
            backend = EasyBiologicBackend()
        except BiologicBackendMissing as exc:
            raise InstrumentError(config.address, str(exc)) from None
    return BiologicCycler.open(config.address, backend=backend, journal_path=journal_path,
                               timeout_s=config.timeout_ms / 1000.0)


def _open_biologic_potentiostat(config: InstrumentConfig, *, backend: Any = None, **_options: Any) -> Any:
    """The channel run one technique at a time (:class:`drivers.biologic.BiologicPotentiostat`)."""
    from drivers.biologic import BiologicBackendMissing, BiologicPotentiostat, EasyBiologicBackend

    if backend is None:
        try:
            backend = EasyBiologicBackend()
        except BiologicBackendMissing as exc:
            raise InstrumentError(config.address, str(exc)) from None
    return BiologicPotentiostat.open(config.address, backend=backend, timeout_s=config.timeout_ms / 1000.0,
                                     sample_interval_s=config.sample_interval_s)


def _open_binder(config: InstrumentConfig, **_options: Any) -> Any:
    """A BINDER chamber; its set point range must be in the station file."""
    from drivers.chamber import open_chamber

    if config.min_setpoint_C is None or config.max_setpoint_C is None:
        raise FileError([f"{config.address}: min_setpoint_C and max_setpoint_C: needed for a chamber (its data "
                         "sheet's set point range; set points outside it are refused)"])
    return open_chamber(config.address, driver="binder", timeout_s=config.timeout_ms / 1000.0,
                        min_setpoint_C=config.min_setpoint_C, max_setpoint_C=config.max_setpoint_C,
                        unit_id=config.unit_id, framing=config.framing)


def _check_binder(address: str) -> None:
    from drivers.chamber import parse_address

    parse_address(address)


def _check_biologic(address: str) -> None:
    from drivers.biologic import parse_address

    parse_address(address)


def _compile_biologic(program: Any, remark: str = "") -> str:
    from drivers.biologic import compile_native

    return compile_native(program, remark=remark)


#: The one driver registry, by the station file's ``driver:`` name.
DRIVERS: dict[str, DriverEntry] = {
    "keithley2400": DriverEntry("keithley2400", "sourcemeter", _open_keithley2400),
    "nanonis": DriverEntry("nanonis", "afm", _open_nanonis, _check_nanonis),
    "neware": DriverEntry("neware", "cycler", _open_neware, _check_neware, NEWARE_FORMAT, _compile_neware),
    "biologic": DriverEntry("biologic", "cycler", _open_biologic, _check_biologic, BIOLOGIC_FORMAT, _compile_biologic,
                            potentiostat=_open_biologic_potentiostat),
    "binder": DriverEntry("binder", "chamber", _open_binder, _check_binder),
}


class InstrumentConfig(BaseModel):
    """One instrument of a station file."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    driver: str
    """A name of :data:`DRIVERS`: keithley2400 (sourcemeter), nanonis (AFM controller, address
    host:port), neware and biologic (battery cycler channels; runs are delegated to the cycler,
    except characterisation programs, which run a BioLogic channel as a potentiostat), binder
    (temperature chamber, address host[:port])."""
    address: str = Field(min_length=1, max_length=512)
    visa_library: str = "@py"
    timeout_ms: int = Field(default=5000, gt=0, le=600_000)
    """Longest wait for one reply (ms); cyclers: 30 000 unless given."""
    baud_rate: int = Field(default=9600, gt=0, le=10_000_000)
    on_lost: ReconnectPolicy = ReconnectPolicy()
    """What to do when the instrument stops answering (retry, then re-apply or stop safely).
    A cycler's test runs on meanwhile; when the budget is spent the run ends without stopping it."""
    # -- cyclers -------------------------------------------------------------------------------
    username: str = "admin"
    """Cycler login (NEWARE BTS client API)."""
    password_env: str | None = None
    """Environment variable holding the cycler password (never the file); unset: the BTS
    factory password ``neware``."""
    step_file_dir: str | None = None
    """Folder where labctl writes NEWARE step files for the BTS PC to read (needed for a real
    BTS; simulated runs use a temporary folder)."""
    step_file_dir_on_bts: str | None = None
    """``step_file_dir`` as the BTS PC names it (e.g. ``C:\\labctl`` for a mounted share)."""
    poll_interval_s: float = Field(default=5.0, gt=0, le=3600)
    """Seconds between status polls and downloads of new points (cyclers)."""
    sample_interval_s: float = Field(default=1.0, ge=0.01, le=3600)
    """A BioLogic channel run as a potentiostat: its techniques record every this many s."""
    # -- temperature chambers --------------------------------------------------------------------
    min_setpoint_C: float | None = Field(default=None, ge=-100, le=400)
    """Lowest set point the chamber accepts (°C, its data sheet); needed for a chamber."""
    max_setpoint_C: float | None = Field(default=None, ge=-100, le=400)
    """Highest set point the chamber accepts (°C); needed for a chamber."""
    unit_id: int = Field(default=1, ge=1, le=247)
    """The chamber controller's MODBus slave address."""
    framing: Literal["rtu", "tcp"] = "rtu"
    """MODBus framing: RTU frames over TCP (the chamber's own interface) or MODBus/TCP."""

    @field_validator("driver")
    @classmethod
    def _known_driver(cls, driver: str) -> str:
        if driver not in DRIVERS:
            names = [repr(name) for name in DRIVERS]
            raise ValueError(f"must be {', '.join(names[:-1])} or {names[-1]}")
        return driver

    @field_validator("address")
    @classmethod
    def _address_fits_driver(cls, address: str, info: ValidationInfo) -> str:
        entry = DRIVERS.get(info.data.get("driver", ""))
        if entry is not None and entry.check_address is not None:
            entry.check_address(address)  # ValueError: one line naming the expected form
        return address

    @property
    def entry(self) -> DriverEntry:
        """This instrument's driver in :data:`DRIVERS`."""
        return DRIVERS[self.driver]

    @property
    def is_cycler(self) -> bool:
        """A cycler channel: protocols run delegated."""
        return self.entry.role == "cycler"

    def password(self) -> str:
        """The cycler password from :attr:`password_env`.

        Raises:
            FileError: the variable is named but not set.
        """
        if self.password_env is None:
            return "neware"
        if self.password_env not in os.environ:
            raise FileError([f"password_env: the environment variable {self.password_env} is not set"])
        return os.environ[self.password_env]


class Station(BaseModel):
    """A station file: the instruments by name, and notifications."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    instruments: dict[str, InstrumentConfig] = Field(min_length=1, max_length=1024)
    notify: NotifyConfig | None = None  # notifications on run end and failures (labctl.app.notify)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)

    def instrument(self, name: str, source: str = "station", role: Role | None = None) -> InstrumentConfig:
        """The instrument called ``name`` (of ``role``, when given).

        Raises:
            FileError: no such instrument (the message lists the ones there are), or it is
                not of ``role``.
        """
        if name not in self.instruments:
            raise FileError([f"{source}: instruments: no instrument named {name!r} "
                             f"(the protocol's instrument field); known: {', '.join(self.instruments)}"])
        config = self.instruments[name]
        if role is not None and config.entry.role != role:
            raise FileError([f"{source}: instruments: {name}: driver {config.driver!r} is a {config.entry.role}, "
                             f"not a{'n' if role[0] in 'aeiou' else ''} {role}"])
        return config


def load_station(path: str | Path) -> Station:
    """Read and validate a station file. Raises :class:`FileError`, one line per problem."""
    return load_model(path, Station)


def open_instrument(config: InstrumentConfig, **options: Any) -> Any:
    """Connect to an instrument through its driver in :data:`DRIVERS` (``options`` go to the
    driver's opener: ``step_file_dir`` for NEWARE, ``journal_path``/``backend`` for BioLogic).

    Raises:
        drivers.base.InstrumentLost: the address cannot be reached (the message names it).
        drivers.base.InstrumentError: it refuses (a login, a channel that does not exist).
        FileError: the configuration cannot work (no step-file folder, password variable unset).
    """
    try:
        return config.entry.open(config, **options)
    except ValueError as exc:  # an address of the wrong form
        raise FileError([f"{config.address}: {exc}"]) from None


def open_potentiostat(config: InstrumentConfig, **options: Any) -> Any:
    """A cycler channel opened as a software-timed potentiostat (its registry entry's
    ``potentiostat`` opener), for programs with ``labctl.steps.SOFTWARE_ONLY`` steps.

    Raises:
        FileError: the driver has no such opener, or a malformed address.
        drivers.base.InstrumentLost / InstrumentError: as :func:`open_instrument`.
    """
    if config.entry.potentiostat is None:
        raise FileError([f"{config.address}: a {config.driver} channel cannot run as a potentiostat"])
    try:
        return config.entry.potentiostat(config, **options)
    except ValueError as exc:
        raise FileError([f"{config.address}: {exc}"]) from None


def identify(config: InstrumentConfig) -> str:
    """What the instrument says it is: a sourcemeter's ``*IDN?``, an AFM controller's
    interface, a cycler channel's identification and state. Opens and closes the instrument;
    starts nothing (a NEWARE channel gets a throw-away step-file folder).

    Raises:
        drivers.base.InstrumentError: it cannot be reached (names its address).
        FileError: the configuration cannot work.
    """
    with tempfile.TemporaryDirectory(prefix="labctl-identify-") as unused:
        instrument = open_instrument(config, step_file_dir=unused)
        try:
            return str(getattr(instrument, "idn", "")).strip() or "(no identification)"
        finally:
            instrument.close()


__all__ = ["DRIVERS", "DriverEntry", "InstrumentConfig", "Role", "Station", "identify", "load_station",
           "open_instrument", "open_potentiostat"]
