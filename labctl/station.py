"""The station file: which instrument is at which address.

```yaml
instruments:
  smu:                       # the name protocols refer to (their `instrument:` field)
    driver: keithley2400
    address: GPIB0::24::INSTR   # any VISA resource string
    visa_library: "@py"      # pyvisa-py; "@ivi" for a vendor VISA library
    timeout_ms: 5000
    baud_rate: 9600          # serial (ASRL) resources only
notify:                      # optional: labctl.notify.NotifyConfig (event log, desktop, e-mail)
  email: {host: smtp.example.org, from: labctl@example.org, to: [operator@example.org]}
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from drivers.base import SourceMeter
from labctl.notify import NotifyConfig
from labctl.engine.policy import ReconnectPolicy
from labctl.yamlfile import FileError, load_model


class InstrumentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: Literal["keithley2400", "nanonis"]  # nanonis: an AFM controller's TCP interface, address host:port
    address: str = Field(min_length=1)
    visa_library: str = "@py"
    timeout_ms: int = Field(default=5000, gt=0)
    baud_rate: int = Field(default=9600, gt=0)
    on_lost: ReconnectPolicy = ReconnectPolicy()
    """What to do when the instrument stops answering (retry, then re-apply or stop safely)."""


class Station(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    instruments: dict[str, InstrumentConfig] = Field(min_length=1)
    notify: NotifyConfig | None = None  # notifications on run end and failures (labctl.notify)

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
