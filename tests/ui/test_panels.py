"""Station and protocol panels: identify, the generated form, errors at the field, save."""

from __future__ import annotations

from protocols import load_protocol
from tests.conftest import EXAMPLES
from ui.protocol_panel import ProtocolPanel
from ui.schema_form import unit_of
from ui.station_panel import StationPanel


def test_units_come_from_the_field_names():
    assert unit_of("start_mA_cm2") == "mA cm⁻²"
    assert unit_of("areal_capacity_mAh_cm2") == "mAh cm⁻²"
    assert unit_of("half_cycle_s") == "s" and unit_of("temperature_C") == "°C"
    assert unit_of("electrolyte_thickness_um") == "µm" and unit_of("name") == ""


def test_form_shows_errors_at_the_field_and_the_step_table(qtbot):
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    assert panel.load(EXAMPLES / "ccd_llzo.yaml")
    assert panel.protocol is not None and panel.step_model.rowCount() == 60
    assert panel.duration_label.text() == "60 steps, planned 15.00 h"
    form = panel.form
    assert form.fields["cell.area_cm2"].editor.text() == "1"
    form.fields["step_mA_cm2"].editor.setText("-2")
    form.fields["cell.area_cm2"].editor.setText("one")
    assert panel.validate() is None
    errors = form.errors()
    assert errors["step_mA_cm2"] == "Input should be greater than 0"
    assert errors["cell.area_cm2"].startswith("Input should be a valid number")
    assert form.fields["step_mA_cm2"].editor.property("validation_error")
    form.fields["step_mA_cm2"].editor.setText("0.5")
    form.fields["cell.area_cm2"].editor.setText("1")
    form.fields["areal_capacity_mAh_cm2"].editor.setText("0.5")  # and half_cycle_s: one too many
    assert panel.validate() is None
    # a whole-protocol error: beside each field it names, and above the form (never scrolled away)
    message = "give exactly one of half_cycle_s and areal_capacity_mAh_cm2"
    assert form.errors() == {"": message, "half_cycle_s": message, "areal_capacity_mAh_cm2": message}
    assert panel.error_label.text() == message and not panel.error_label.isHidden()
    assert panel.duration_label.text() == f"not valid: {message}"
    form.fields["half_cycle_s"].editor.setText("")
    protocol = panel.validate()
    assert protocol is not None and protocol.step_mA_cm2 == 0.5 and protocol.half_cycle_s is None
    assert panel.step_model.rowCount() == 2 * len(protocol.current_densities_mA_cm2)


def test_new_protocol_saves_to_yaml_that_loads_back(qtbot, tmp_path):
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    panel.new_protocol("ccd_staircase")
    panel.form.fields["stop_mA_cm2"].editor.setText("1.0")
    panel.form.fields["name"].editor.setText("short staircase")
    saved = panel.save(tmp_path / "mine.yaml")
    protocol = load_protocol(saved)
    assert protocol.stop_mA_cm2 == 1.0 and protocol.name == "short staircase"
    text = saved.read_text()
    assert "\nkind: ccd_staircase\n" in text and text.index("kind:") < text.index("name:")
    assert "# [000 L141]" in text  # the example's citations stay with the values
    assert panel.file_for_run(tmp_path / "run.h5") == saved  # unmodified: the file itself


def test_bad_protocol_file_is_one_message(qtbot, tmp_path):
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: frobnicate\nname: x\n")
    with qtbot.waitSignal(panel.message) as blocker:
        assert not panel.load(bad)
    assert blocker.args == ["bad.yaml:1: kind: 'frobnicate' is not known; one of ccd_staircase"] or \
        blocker.args[0].startswith("bad.yaml:1: kind: 'frobnicate' is not known")


def test_identify_the_simulated_2400_off_the_gui_thread(qtbot):
    panel = StationPanel()
    qtbot.addWidget(panel)
    panel.set_simulate(True)
    with qtbot.waitSignal(panel.identified, timeout=15_000) as blocker:
        panel.identify("smu", None)
    assert blocker.args[0] == "smu" and "MODEL 2400" in blocker.args[1]
    assert "MODEL 2400" in panel.idn("smu")


def test_unreachable_instrument_is_one_line_naming_the_address(qtbot, tmp_path):
    station = tmp_path / "station.yaml"
    station.write_text("instruments:\n  smu:\n    driver: keithley2400\n    address: TCPIP::127.0.0.1::9::SOCKET\n"
                       "    timeout_ms: 1000\n")
    panel = StationPanel()
    qtbot.addWidget(panel)
    assert panel.load(station) and not panel.simulate
    with qtbot.waitSignal(panel.message, timeout=15_000) as blocker:
        panel.identify("smu", panel.station.instruments["smu"])
    assert blocker.args[0].startswith("cannot reach: TCPIP::127.0.0.1::9::SOCKET")


def test_every_example_loads_valid_and_sweep_protocols_round_trip_through_the_form(qtbot, tmp_path):
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    for example in sorted(EXAMPLES.glob("*.yaml")):  # every kind, the sequence's nested parts as YAML text
        assert panel.load(example), example
        assert panel.protocol is not None, (example.name, panel.form.errors())
        assert panel.protocol == load_protocol(example), example.name  # the form changes nothing
    # c-AFM: sites and transects are tables, the optional map a box with a tick
    assert panel.load(EXAMPLES / "cafm_gb_vs_gi.yaml")
    form = panel.form
    sites = form.fields["sites"]
    assert sites.table.rowCount() == 11 and sites.value()[0] == {"x_nm": 157.4, "y_nm": 756.7, "site_class": "GB",
                                                                   "distance_to_boundary_nm": 0.0}
    assert form.fields["transects"].value()[0]["distances_nm"] == [0.0, 6.0, 12.0, 20.0, 30.0, 50.0]
    sites.table.item(0, 2).setText("XX")
    assert panel.validate() is None
    assert form.errors()["sites"].startswith("row 1 site_class: Input should be 'GB', 'GI' or 'HL'")
    sites.table.item(0, 2).setText("GI")
    sites.add_button.click()  # an empty row: x_nm and y_nm required
    assert panel.validate() is None and "row 12 x_nm: Field required" in form.errors()["sites"]
    sites.remove_button.click()
    form.optional_groups["map"].setChecked(False)
    protocol = panel.validate()
    assert protocol is not None and protocol.map is None and protocol.all_sites()[0].site_class == "GI"
    assert panel.step_model.rowCount() == 34  # no maps
    saved = load_protocol(panel.save(tmp_path / "cafm.yaml"))
    assert saved == protocol and "map:" not in (tmp_path / "cafm.yaml").read_text()
    # memristor: the electrode kind is a choice; a pad has no tip to place
    assert panel.load(EXAMPLES / "memristor_tip.yaml")
    assert panel.instruments() == {"smu": "keithley2400", "afm": "nanonis"}
    panel.form.fields["electrode.kind"].editor.setCurrentText("pad")
    assert panel.validate() is not None and panel.instruments() == {"smu": "keithley2400"}
    assert panel.step_model.rowCount() == 200  # no tip move


def test_identify_a_neware_channel_of_a_station(qtbot, tmp_path):
    from drivers.sim.neware import BtsServer, NewareBtsSimulator

    with BtsServer(NewareBtsSimulator(2)) as server:
        station = tmp_path / "station.yaml"
        station.write_text(f"instruments:\n  cyc1:\n    driver: neware\n    address: 127.0.0.1:{server.address[1]}/1-1-2\n"
                           f"    step_file_dir: {tmp_path}\n")
        panel = StationPanel()
        qtbot.addWidget(panel)
        assert panel.load(station)
        with qtbot.waitSignal(panel.identified, timeout=15_000) as blocker:
            panel.identify("cyc1", panel.station.instruments["cyc1"])
    assert blocker.args[0] == "cyc1"
    assert blocker.args[1].startswith(f"NEWARE BTS at 127.0.0.1:{server.address[1]}, channel 1-1-2"), blocker.args[1]


def test_a_sequences_parts_are_edited_as_yaml_and_errors_name_the_part(qtbot):
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    assert panel.load(EXAMPLES / "plating_with_eis_fse.yaml")
    parts = panel.form.fields["parts"]
    text = parts.editor.toPlainText()
    assert text.startswith("- rest:\n    duration_s: 600") and "- loop:\n    count: 12" in text
    parts.editor.setPlainText(text.replace("count: 12", "count: 3"))
    protocol = panel.validate()
    assert protocol is not None and protocol.parts[2].loop.count == 3
    parts.editor.setPlainText(text.replace("duration_s: 600", "duration_s: -1"))
    assert panel.validate() is None
    assert panel.form.errors()["parts"].startswith("0 RestPart rest duration_s: Input should be greater than 0")


def test_garbage_is_collected_on_the_gui_thread_only(qtbot):
    """A collection on a worker thread destroyed Qt objects there (a segmentation fault, or a
    deadlock inside ~QObject, while a worker imported pymeasure or tiled's client): automatic
    collection is off, and a GUI-thread timer collects instead."""
    import gc

    from ui import app

    app.collect_garbage_on_the_gui_thread()
    collector = app._COLLECTOR
    app.collect_garbage_on_the_gui_thread()
    assert app._COLLECTOR is collector  # one per process
    assert not gc.isenabled() and collector.timer.isActive()
