"""Protocol files: the examples load, every kind of mistake gives one line with file:line: field."""

from __future__ import annotations

import re

import pytest

from labctl.steps import ConstantCurrent
from labctl.app.run import load_checked
from protocols import CCDStaircase, FileError, load_protocol
from tests.conftest import EXAMPLES

GOOD = (EXAMPLES / "ccd_llzo.yaml").read_text()


def test_examples_expand_to_the_seeds_staircases():
    llzo = load_protocol(EXAMPLES / "ccd_llzo.yaml")
    assert isinstance(llzo, CCDStaircase)
    assert llzo.current_densities_mA_cm2[0] == 0.1 and llzo.current_densities_mA_cm2[-1] == 3.0
    assert len(llzo.current_densities_mA_cm2) == 30  # no 0.1-step float drift dropping 3.0
    assert llzo.cell.temperature_C == 25
    program = llzo.program()
    assert len(program.steps) == 60
    plate, strip = program.steps[:2]
    assert isinstance(plate, ConstantCurrent)
    assert plate.current_A == pytest.approx(0.1e-3) and strip.current_A == pytest.approx(-0.1e-3)
    assert program.safety.max_abs_voltage_V == 5.0

    fse = load_protocol(EXAMPLES / "ccd_fse.yaml")
    assert fse.cycles_per_step == 10 and fse.step_mA_cm2 == 1.0
    assert (fse.cell.temperature_C, fse.cell.electrolyte_thickness_um, fse.cell.area_cm2) == (50, 140, 1.13)
    steps = fse.program().steps
    assert len(steps) == 12 * 10 * 2
    assert steps[0].current_A == pytest.approx(1.13e-3)
    assert {s.cycle for s in steps[:20]} == set(range(1, 11))


def test_areal_capacity_sets_the_half_cycle_time(tmp_path):
    text = GOOD.replace("half_cycle_s: 900", "areal_capacity_mAh_cm2: 0.5")
    path = tmp_path / "cap.yaml"
    path.write_text(text)
    steps = load_protocol(path).program().steps
    assert steps[0].duration_s == pytest.approx(0.5 * 3600 / 0.1)
    assert steps[-1].duration_s == pytest.approx(0.5 * 3600 / 3.0)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BAD = [
    # (what to replace, replacement, expected "field: problem" regex, line needle or None)
    ("step_mA_cm2: 0.1 ", "step_mA_cm2: 0 ", r"step_mA_cm2: must be > 0", "step_mA_cm2:"),
    ("step_mA_cm2: 0.1 ", "step_mA_cm2: fast ", r"step_mA_cm2: must be a number, got 'fast'", "step_mA_cm2:"),
    ("half_cycle_s: 900", "half_cyle_s: 900", r"half_cyle_s: unknown field", "half_cyle_s:"),
    ("  li_thickness_um: 100", "", r"cell\.li_thickness_um: required field is missing", "cell:"),
    ("  area_cm2: 1.0", "  area_cm2: -1", r"cell\.area_cm2: must be > 0", "area_cm2:"),
    ("cycles_per_step: 1", "cycles_per_step: 1.5", r"cycles_per_step: must be a whole number", "cycles_per_step:"),
    ("stop_mA_cm2: 3.0", "stop_mA_cm2: 0.05", r"stop_mA_cm2 \(0.05\) is below start_mA_cm2", None),
    ("half_cycle_s: 900", "half_cycle_s: 900\nareal_capacity_mAh_cm2: 1", r"exactly one of half_cycle_s", None),
    ("  floor_V: 0.001", "  floor_V: -1", r"detection\.floor_V: must be >= 0", "floor_V:"),
    ("  drop_fraction: 0.5", "  drop_fraction: 1.5", r"detection\.drop_fraction: must be < 1", "drop_fraction:"),
    ("kind: ccd_staircase", "kind: ccd_stairs", r"kind: 'ccd_stairs' is not known", "kind:"),
    ("kind: ccd_staircase", "", r"kind: missing", None),
    ("  preset: hl_llzo", "  preset: granite", r"simulated_cell\.preset: unknown preset 'granite'", "preset:"),
    ("voltage_limit_V: 5.0", "voltage_limit_V: 500", r"voltage_limit_V: must be <= 210", "voltage_limit_V:"),
    ("stop_mA_cm2: 3.0", "stop_mA_cm2: 3.0\n  nested: [", r"YAML syntax error", None),
]


@pytest.mark.parametrize(("old", "new", "expected", "needle"), BAD, ids=[b[2][:30] for b in BAD])
def test_bad_protocol_files_give_one_line_naming_file_line_and_field(tmp_path, old, new, expected, needle):
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FileError) as info:
        load_checked(path)  # the schema, the program and the simulated cell, as `labctl validate`
    lines = info.value.lines
    assert len(lines) == 1, lines
    assert "\n" not in lines[0]
    match = re.match(r"bad\.yaml:(\d+): (.*)$", lines[0])
    assert match, lines[0]
    assert re.search(expected, match.group(2)), lines[0]
    if needle is not None:
        assert int(match.group(1)) == _line_of(text, needle), lines[0]


def test_several_mistakes_give_one_line_each(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("step_mA_cm2: 0.1 ", "step_mA_cm2: 0 ").replace("  area_cm2: 1.0", "  area_cm2: 0"))
    with pytest.raises(FileError) as info:
        load_protocol(path)
    assert len(info.value.lines) == 2
    assert all(line.startswith("bad.yaml:") for line in info.value.lines)


def test_missing_empty_and_non_mapping_files(tmp_path):
    with pytest.raises(FileError, match=r"nope\.yaml: cannot read"):
        load_protocol(tmp_path / "nope.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(FileError, match=r"empty\.yaml:1: the file must be a mapping"):
        load_protocol(tmp_path / "empty.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(FileError, match=r"list\.yaml:1: the file must be a mapping"):
        load_protocol(tmp_path / "list.yaml")
