"""The Train view says what a run is doing between its last epoch and its saved model."""

from __future__ import annotations

from core.checkpoints import BatchProgress
from gui.train_view import TrainView


def test_after_the_epochs_each_finishing_phase_is_shown_then_the_bars_end_full(qtbot) -> None:
    view = TrainView()
    qtbot.addWidget(view)
    view.show()
    view.on_status("decoding 140 images")  # before training: not a finishing phase
    assert "finishing" not in view.time_label.text()
    view.on_event(BatchProgress(epoch=1, epochs=1, batch=10, batches=10))
    for phase in ("fitting the out-of-distribution gate on 100 training images",
                  "evaluating on 20 test images", "Building the LiteRT twin of model.keras…"):
        view.on_status(phase)
        assert view.batch_bar.maximum() == 0  # busy: the run is alive
        assert view.batch_bar.format().lower().startswith(phase[:20].lower())
        assert view.time_label.text().endswith(f"finishing: {phase}")
        assert "ETA" not in view.time_label.text()
    view.on_failed("disk full")
    assert view.batch_bar.maximum() == view.batch_bar.value() == 1
    assert view.time_label.text().startswith("Stopped after")
