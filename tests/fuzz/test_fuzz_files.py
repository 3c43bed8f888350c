"""Fuzzing the files an operator hands to labctl (hypothesis): protocol, station and run files.

For any input: no traceback (only the one-line errors labctl raises for bad files), no hang (each
example has a deadline), and nothing non-finite or unbounded accepted.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labctl.app.run import load_checked, run_protocol
from labctl.station import load_station
from labctl.store import RunFile, RunFileError, summarise
from labctl.store.export import export_bdf
from labctl.yamlfile import FileError
from tests.conftest import EXAMPLES

FUZZ = settings(max_examples=60, deadline=10_000, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)

#: Values an operator (or an attacker) might type where a number or a name belongs.
NASTY = st.sampled_from([
    ".nan", ".inf", "-.inf", "1e30", "1.0e+30", "1e-12", "1.0e-12", "-1", "0", "123456789012345678901234567890",
    "[ccd_staircase]", "{a: 1}", "[]", "~", "yes", "'0x10'", "&x 5", "*undefined", "!!binary AAAA", "\"\\0\"",
    "1_000_000_000", "0.0000000000000000001", "-0.0", "1e308", "2e308",
]) | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=0, max_size=40).map(repr)

EXAMPLE_FILES = sorted(EXAMPLES.glob("*.yaml"))
VALUE_LINE = re.compile(r"^(\s*[A-Za-z_][A-Za-z0-9_]*:)\s*(\S[^#\n]*?)?(\s*#.*)?$")


def _assert_one_line_errors(exc: FileError, name: str) -> None:
    assert exc.lines, "a FileError names at least one problem"
    for line in exc.lines:
        assert "\n" not in line and "Traceback" not in line, line
        assert name in line or line.startswith("--"), line


def _assert_finite(value: object) -> None:
    if isinstance(value, float):
        assert math.isfinite(value), value
    elif isinstance(value, dict):
        for item in value.values():
            _assert_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _assert_finite(item)


def _with_one_value_changed(text: str, data: st.DataObject, path: Path) -> Path:
    """Write ``text`` to ``path`` with the value of one ``key: value`` line replaced by a nasty one."""
    lines = text.splitlines()
    candidates = [k for k, line in enumerate(lines) if VALUE_LINE.match(line) and not line.lstrip().startswith("#")]
    k = data.draw(st.sampled_from(candidates))
    lines[k] = f"{VALUE_LINE.match(lines[k]).group(1)} {data.draw(NASTY)}"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("example", EXAMPLE_FILES, ids=[p.stem for p in EXAMPLE_FILES])
@FUZZ
@given(data=st.data())
def test_a_protocol_file_with_any_value_changed_loads_or_says_what_is_wrong(tmp_path, example, data):
    path = _with_one_value_changed(example.read_text(), data, tmp_path / "fuzzed.yaml")
    try:
        protocol, program = load_checked(path)
    except FileError as exc:
        _assert_one_line_errors(exc, path.name)
        return
    _assert_finite(program.model_dump())
    assert program.n_steps <= 10_000_000
    assert math.isfinite(program.planned_duration_s)


@FUZZ
@given(blob=st.binary(min_size=0, max_size=4096))
def test_binary_garbage_as_a_protocol_or_station_file_is_one_line(tmp_path, blob):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(blob)
    for load in (load_checked, load_station):
        try:
            load(path)
        except FileError as exc:
            _assert_one_line_errors(exc, path.name)


@FUZZ
@given(depth=st.integers(min_value=2, max_value=12), width=st.integers(min_value=2, max_value=12))
def test_alias_bombs_are_refused_quickly(tmp_path, depth, width):
    text = ["kind: ccd_staircase", "l0: &l0 [x]"]
    text += [f"l{d}: &l{d} [{', '.join([f'*l{d - 1}'] * width)}]" for d in range(1, depth)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(FileError) as info:
        load_checked(path)
    _assert_one_line_errors(info.value, path.name)


STATION = """instruments:
  smu:
    driver: keithley2400
    address: TCPIP::127.0.0.1::5025::SOCKET
    timeout_ms: 5000
    on_lost: {retry_for_s: 300, first_wait_s: 0.5, max_wait_s: 30}
  cyc1:
    driver: neware
    address: 127.0.0.1:502/1-1-3
    poll_interval_s: 5
"""


@FUZZ
@given(data=st.data())
def test_a_station_file_with_any_value_changed_loads_or_says_what_is_wrong(tmp_path, data):
    path = _with_one_value_changed(STATION, data, tmp_path / "station.yaml")
    try:
        station = load_station(path)
    except FileError as exc:
        _assert_one_line_errors(exc, path.name)
        return
    _assert_finite(station.model_dump())


# -- run files ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A finished run file of a short simulated CCD staircase."""
    folder = tmp_path_factory.mktemp("run")
    protocol = folder / "short.yaml"
    protocol.write_text((EXAMPLES / "ccd_llzo.yaml").read_text().replace("stop_mA_cm2: 3.0", "stop_mA_cm2: 0.3"))
    return run_protocol(protocol, simulate=True, speed=math.inf, output=folder / "run.h5").path


def _read_everything(path: Path) -> None:
    """What `labctl inspect`, `report` and `export` read, in process."""
    summarise(path)
    with RunFile(path) as run:
        for channel in run.channels:
            run.columns(channel)
        run.steps()
        run.events()
        run.results()
    export_bdf(path, path.with_suffix(".csv"))


@FUZZ
@given(fraction=st.floats(min_value=0.0, max_value=0.999))
def test_a_run_file_cut_anywhere_reads_or_says_what_is_wrong(tmp_path, small_run, fraction):
    damaged = tmp_path / "cut.h5"
    data = small_run.read_bytes()
    damaged.write_bytes(data[:int(len(data) * fraction)])
    try:
        _read_everything(damaged)
    except RunFileError as exc:
        assert "\n" not in str(exc) and damaged.name in str(exc)
    for leftover in tmp_path.glob("cut*.csv"):
        leftover.unlink()


@FUZZ
@given(flips=st.lists(st.tuples(st.floats(min_value=0.0, max_value=0.999), st.integers(1, 255)), min_size=1,
                      max_size=8))
def test_a_run_file_with_flipped_bytes_reads_or_says_what_is_wrong(tmp_path, small_run, flips):
    damaged = tmp_path / "flipped.h5"
    data = bytearray(small_run.read_bytes())
    for where, mask in flips:
        data[int(where * len(data))] ^= mask
    damaged.write_bytes(bytes(data))
    try:
        _read_everything(damaged)
    except RunFileError as exc:
        assert "\n" not in str(exc) and damaged.name in str(exc)
    for leftover in tmp_path.glob("flipped*.csv"):
        leftover.unlink()


@pytest.mark.parametrize("part", ["events", "steps", "results", "channels/smu/voltage_V", "channels/smu",
                                  "channels"])
def test_a_run_file_missing_a_part_reads_or_names_the_part(tmp_path, small_run, part):
    damaged = tmp_path / "partial.h5"
    shutil.copy(small_run, damaged)
    with h5py.File(damaged, "r+") as f:
        del f[part]
    with pytest.raises(RunFileError) as info:
        _read_everything(damaged)
    assert "\n" not in str(info.value) and damaged.name in str(info.value)
    assert part.split("/")[-1] in str(info.value) or "channel" in str(info.value)


def test_nan_readings_in_a_run_file_are_summarised_not_trusted(tmp_path, small_run):
    damaged = tmp_path / "nan.h5"
    shutil.copy(small_run, damaged)
    with h5py.File(damaged, "r+") as f:
        v = f["channels/smu/voltage_V"]
        v[: len(v) // 2] = np.nan
    summary = summarise(damaged)
    assert summary.channels[0].columns["voltage_V"].n_nonfinite == summary.channels[0].n_readings // 2
