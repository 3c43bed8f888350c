"""What an operator looks for: the readout in large type, the result marked, alarms that stay
until acknowledged, export, cursor readout, plots cleared for another protocol, a run's own
protocol read-only, Save as… with comments, the Help menu (offscreen)."""

from __future__ import annotations

import csv
import json

import h5py
import numpy as np
import pytest

from tests.conftest import EXAMPLES
from tests.ui.conftest import finished_run
from ui.progress import format_duration


def review(window, qtbot, path):
    assert window.open_run_file(path)
    qtbot.waitUntil(lambda: window.view.finished and window.plot_set.n_points == len(window.view.buffer) > 0,
                    timeout=20_000)
    window._frame()
    return window.view


def test_readout_shows_the_files_numbers_and_the_result_marked_on_the_plot(window_factory, qtbot, tmp_path_factory):
    path = finished_run(tmp_path_factory, "ccd_llzo.yaml")
    window = window_factory(simulate=False)
    review(window, qtbot, path)
    with h5py.File(path, "r") as f:
        ch = f["channels/smu"]
        v, i, j = (float(ch[name][-1]) for name in ("voltage_V", "current_A", "current_density_mA_cm2"))
        t = float(ch["test_time_s"][-1])
        step, cycle = int(ch["step_index"][-1]), int(ch["cycle_index"][-1])
        results = {k: f["results"].attrs[k] for k in f["results"].attrs}
    r = window.readout
    assert r.voltage.text == f"{v * 1e3:.4g} mV" and r.density.text == f"{j:.4g} mA cm⁻²"
    assert r.current.text.endswith("mA") and float(r.current.text.split()[0]) == pytest.approx(i * 1e3, rel=1e-3)
    assert r.step.text == f"{step + 1} / 60  plate 1.9 mA cm⁻²" and r.cycle.text == str(cycle)
    assert r.elapsed.text == format_duration(t) and r.remaining.text == "ended"
    assert r.output.text == "OFF" and r.instrument.text.startswith("smu: MODEL 2400")
    assert r.result.text() == "CCD = 1.8 mA cm⁻²"
    # the short marked where it happened, its step ringed in the overpotential plot
    line = window.plots.result_lines[0]
    assert line.value() == pytest.approx(float(results["short_time_s"]))
    assert "CCD = 1.8 mA cm⁻²" in line.label.format
    assert window.plots.overpotential_short.getData()[0].tolist() == [float(results["short_step_index"])]


def test_an_alarm_stays_until_acknowledged_and_the_acknowledgement_is_logged(window_factory, qtbot, tmp_path_factory,
                                                                            tmp_path):
    path = finished_run(tmp_path_factory, "ccd_llzo.yaml")
    copy = tmp_path / "ccd.h5"
    copy.write_bytes(path.read_bytes())
    window = window_factory(simulate=False)
    review(window, qtbot, copy)
    banner = window.alarm_banner
    assert not banner.isHidden() and banner.label.text().startswith("SHORT CIRCUIT — ccd.h5 [smu]:")
    assert "1.9 mA cm⁻², t = 9.0" in banner.label.text()
    window.open_run_file(finished_run(tmp_path_factory, "memristor_pad.yaml"))  # another run: it stays
    assert not banner.isHidden()
    banner.button.click()
    assert banner.isHidden()
    entries = [json.loads(line) for line in (tmp_path / "ccd.h5.alarms.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in entries] == ["short"] and entries[0]["by"] == banner.who
    assert entries[0]["run"] == str(copy.resolve()) and "acknowledged" in window.event_log.kinds()
    again = window_factory(simulate=False)  # opened again later: acknowledged, no banner
    review(again, qtbot, copy)
    assert again.alarm_banner.isHidden()


def test_export_png_svg_and_the_csv_of_the_data_in_view(window_factory, qtbot, tmp_path_factory, tmp_path):
    path = finished_run(tmp_path_factory, "ccd_llzo.yaml")
    window = window_factory(simulate=False)
    view = review(window, qtbot, path)
    assert window.export_button.isVisible() and window.export_button.text() == "Export ▾"
    png, svg = window.export(tmp_path / "p.png"), window.export(tmp_path / "p.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and b"<svg" in svg.read_bytes()[:500]
    window.plots.voltage_plot.setXRange(3600.0, 7200.0, padding=0)  # the operator looks at the second hour
    rows = list(csv.reader(open(window.export(tmp_path / "p.csv"), encoding="utf-8")))
    assert rows[0] == ["test_time_s", "voltage_V", "current_density_mA_cm2"]
    t = view.buffer.view("test_time_s")
    expected = t[(t >= 3600.0) & (t <= 7200.0)]
    assert len(rows) - 1 == len(expected) and float(rows[1][0]) == expected[0] and float(rows[-1][0]) == expected[-1]


def test_cursor_readout_says_where_with_units(window_factory, qtbot, tmp_path_factory):
    window = window_factory(simulate=False)
    review(window, qtbot, finished_run(tmp_path_factory, "ccd_llzo.yaml"))
    qtbot.waitUntil(lambda: window.plots.voltage_plot.viewRange()[0][1] > 8 * 3600, timeout=5_000)  # autoranged
    text = window.plots.cursors[0].show_at(2 * 3600.0, 0.05)
    assert text == "t = 2 h · V = 0.05 V" and window.cursor_label.text() == text
    window.open_run_file(finished_run(tmp_path_factory, "memristor_pad.yaml"))
    qtbot.waitUntil(lambda: window.view.finished, timeout=20_000)
    assert window.sweep_plots.cursors[0].show_at(-0.2, -6.0) == "V = -0.2 V · |I| = 1 µA"


def test_loading_another_protocol_clears_the_finished_runs_plots(window_factory, qtbot, tmp_path_factory):
    window = window_factory(simulate=False)
    review(window, qtbot, finished_run(tmp_path_factory, "ccd_llzo.yaml"))
    window.plots.voltage_plot.setXRange(0, 100, padding=0)
    assert window.protocol_panel.read_only  # the run's own protocol, from its file
    assert window.protocol_panel.load(EXAMPLES / "cycling_llzo_0p8.yaml")
    assert window.view is None and window.plots.n_points == 0 and not window.plots.result_lines
    assert window.plots.voltage_plot.getViewBox().autoRangeEnabled()[0]  # the old ranges are gone
    assert window.readout.voltage.text == "—" and window.readout.result.text() == ""
    assert window.protocol_panel.duration_label.text().startswith("2,000 steps, planned 41.7 d")  # days


def test_a_reviewed_runs_protocol_is_shown_read_only_from_its_file(window_factory, qtbot, tmp_path_factory):
    window = window_factory()
    path = finished_run(tmp_path_factory, "memristor_pad.yaml")
    review(window, qtbot, path)
    panel = window.protocol_panel
    assert panel.read_only and "read-only" in panel.file_label.text() and panel.copy_button.isVisible()
    assert panel.form.fields["cycles"].editor.isReadOnly()
    with h5py.File(path, "r") as f:
        stored = f.attrs["protocol_text"]
    assert panel.form.fields["name"].editor.text() in stored
    assert not window.run_panel.start_button.isEnabled()  # a run's record, not a protocol to start
    panel.copy_button.click()
    assert not panel.read_only and not panel.form.fields["cycles"].editor.isReadOnly()
    assert window.run_panel.start_button.isEnabled()


def test_form_labels_in_words_and_save_as_a_new_file_keeping_comments(qtbot, tmp_path, monkeypatch):
    from ui.protocol_panel import ProtocolPanel

    monkeypatch.setenv("LABCTL_PROTOCOLS", str(tmp_path / "mine"))
    panel = ProtocolPanel()
    qtbot.addWidget(panel)
    assert panel.load(EXAMPLES / "ccd_llzo.yaml")
    label = panel.form.findChild(type(panel.file_label), "cell.electrolyte_thickness_um:label")
    assert label.text() == "Electrolyte thickness (µm)" and label.toolTip().startswith("electrolyte_thickness_um")
    default = panel.default_save_path()
    assert default.parent == tmp_path / "mine" and not default.exists()
    assert default.name.startswith("ccd_staircase_ccd_of_li_h_l_llzo_li")
    panel.form.fields["stop_mA_cm2"].editor.setText("2.5")
    saved = panel.save(default)
    text = saved.read_text()
    assert "stop_mA_cm2: 2.5" in text
    assert "# reported CCD 1.8 mA cm-2 with the PPC-LiTFSI homogenising layer [004 L87]." in text
    assert text.count("[004 L") == (EXAMPLES / "ccd_llzo.yaml").read_text().count("[004 L")
    assert (EXAMPLES / "ccd_llzo.yaml").read_text() != text  # the example itself untouched
    assert panel.default_save_path() != saved  # the next offer is a new file again


def test_help_menu_has_about_with_versions_and_the_readmes_sections(window_factory):
    window = window_factory(simulate=False)
    help_menu = window.help_menu
    titles = [title for title, _text in help_menu.sections]
    assert "The bench window" in titles and "Commands" in titles
    about = help_menu.about_text()
    assert "labctl" in about and "Qt" in about and "pyqtgraph" in about
    from PySide6.QtWidgets import QTextBrowser

    dialog = help_menu.show_section(*help_menu.sections[titles.index("The bench window")])
    assert "The bench window" in dialog.findChild(QTextBrowser).toPlainText()
    dialog.close()
    assert [a.text() for a in window.menuBar().actions()][-1] == "&Help"
