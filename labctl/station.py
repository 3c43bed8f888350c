"""The station file: which instrument is at which address.

```yaml
instruments:
  smu:                       # the name protocols refer to (their `instrument:` field)
    driver: keithley2400
    address: GPIB0::24::INSTR   # any VISA resource string
    visa_library: "@py"      # pyvisa-py; "@ivi" for a vendor VISA library
    timeout_ms: 5000
    baud_rate: 9600          # serial (ASRL) resources only
  cyc1:                      # a battery cycler channel: the protocol runs in the cycler's firmware
    driver: neware           # or biologic
    address: 192.168.1.50:502/1-1-3   # NEWARE: BTS PC host:port / devid-subdevid-chlid; Biologic: USB0/1
    username: admin
    password_env: NEWARE_PASSWORD     # environment variable with the BTS password (unset: "neware")
    step_file_dir: /mnt/bts/labctl    # where labctl writes step files; the BTS PC must read them …
    step_file_dir_on_bts: 'C:\\labctl' # … under this name (default: the same path)
    poll_interval_s: 5       # status + new points every 5 s
notify:                      # optional: labctl.app.notify.NotifyConfig (event log, desktop, e-mail)
  email: {host: smtp.example.org, from: labctl@example.org, to: [operator@example.org]}
```
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from drivers.base import CyclerChannel, InstrumentError, SourceMeter
from labctl.app.notify import NotifyConfig
from labctl.engine.policy import ReconnectPolicy
from labctl.yamlfile import FileError, load_model


class InstrumentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: Literal["keithley2400", "nanonis", "neware", "biologic"]
    """nanonis: an AFM controller's TCP interface, address host:port; neware and biologic:
    battery cycler channels (:data:`CYCLER_DRIVERS`), runs delegated to the cycler."""
    address: str = Field(min_length=1)
    visa_library: str = "@py"
    timeout_ms: int = Field(default=5000, gt=0)
    """Longest wait for one reply (ms); cyclers: 30 000 unless given."""
    baud_rate: int = Field(default=9600, gt=0)
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
    poll_interval_s: float = Field(default=5.0, gt=0)
    """Seconds between status polls and downloads of new points (cyclers)."""

    @field_validator("address")
    @classmethod
    def _address_fits_driver(cls, address: str, info: ValidationInfo) -> str:
        driver = info.data.get("driver")
        if driver == "neware":
            from drivers.neware import parse_address

            parse_address(address)  # ValueError: one line naming the expected form
        elif driver == "biologic":
            from drivers.biologic import parse_address as parse_biologic

            parse_biologic(address)
        return address

    @property
    def is_cycler(self) -> bool:
        """A cycler channel: protocols run delegated (:mod:`labctl.app.cyclers`)."""
        return self.driver in CYCLER_DRIVERS

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
    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: dict[str, InstrumentConfig] = Field(min_length=1)
    notify: NotifyConfig | None = None  # notifications on run end and failures (labctl.app.notify)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)

    def instrument(self, name: str, source: str = "station") -> InstrumentConfig:
        """The instrument called ``name``.

        Raises:
            FileError: no such instrument (the message lists the ones there are).
        """
        if name not in self.instruments:
            raise FileError([f"{source}: instruments: no instrument named {name!r} "
                             f"(the protocol's instrument field); known: {', '.join(self.instruments)}"])
        return self.instruments[name]


def load_station(path: str | Path) -> Station:
    """Read and validate a station file. Raises :class:`FileError`, one line per problem."""
    return load_model(path, Station)


#: Drivers of battery cyclers (delegated execution).
CYCLER_DRIVERS = frozenset({"neware", "biologic"})


def open_instrument(config: InstrumentConfig) -> SourceMeter:
    """Connect to an instrument through its driver.

    Raises:
        drivers.base.InstrumentLost: the address cannot be reached (the message names it).
    """
    if config.driver == "keithley2400":
        from drivers.keithley2400 import Keithley2400

        return Keithley2400(config.address, visa_library=config.visa_library,
                            timeout_ms=config.timeout_ms, baud_rate=config.baud_rate)
    raise ValueError(f"no driver {config.driver!r}")


def open_cycler(config: InstrumentConfig, *, step_file_dir: str | Path | None = None,
                journal_path: str | Path | None = None) -> CyclerChannel:
    """Connect to a cycler channel through its driver.

    ``step_file_dir`` replaces the station's (a simulated BTS reads a temporary folder);
    ``journal_path`` is where a BioLogic channel journals the points it reads (the run file's
    name + ``.bljournal``: BioLogic's memory gives each point out once).

    Raises:
        FileError: the configuration cannot work (no step-file folder, password variable unset).
        drivers.base.InstrumentLost: the cycler cannot be reached (the message names the address).
        drivers.base.InstrumentError: it refuses the login or has no such channel.
    """
    if config.driver == "neware":
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
    if config.driver == "biologic":
        from drivers.biologic import BiologicBackendMissing, EasyBiologicBackend
        from drivers.biologic import BiologicCycler

        try:
            backend = EasyBiologicBackend()
        except BiologicBackendMissing as exc:
            raise InstrumentError(config.address, str(exc)) from None
        return BiologicCycler.open(config.address, backend=backend, journal_path=journal_path,
                                   timeout_s=config.timeout_ms / 1000.0)
    raise FileError([f"{config.address}: driver {config.driver!r} is not a cycler driver available here"])
