"""`predict --isic-csv` writes the ISIC 2018 submission format, and the challenge's own scorer
(`isic-challenge-scoring`) agrees with `evaluate` on balanced accuracy and AUC."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.cli import main
from tests.synthetic import make_isic

scoring = pytest.importorskip("isic_challenge_scoring", reason="a test-only dependency "
                              "(the [test] extra); install it to check against the scorer")


def test_the_isic_scorer_agrees_with_evaluate(tiny_model: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    from isic_challenge_scoring import metrics
    from isic_challenge_scoring.load_csv import parse_truth_csv

    folder = make_isic(tmp_path / "isic", per_class=4)
    submission = tmp_path / "submission.csv"
    assert main(["predict", "--model", str(tiny_model), str(folder), "--isic-csv",
                 str(submission), "--json"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tiny_model), "--data", str(folder), "--json"]) == 0
    ours = json.loads(capsys.readouterr().out)

    assert submission.read_text().splitlines()[0] == "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"
    [truth_csv] = folder.rglob("*GroundTruth.csv")
    with truth_csv.open() as stream:
        truth, weights = parse_truth_csv(stream)
    # the scorer's own CSV reader calls DataFrame.applymap, which pandas 3 removed: read it
    # with pandas, in the scorer's shape (image index, the truth's column order)
    predicted = pd.read_csv(submission).set_index("image").loc[truth.index, truth.columns]
    assert len(predicted) == len(truth) == 28
    balanced = metrics.balanced_multiclass_accuracy(truth, predicted, weights.score_weight)
    aucs = [metrics.auc(truth[c], predicted[c], weights.score_weight) for c in truth.columns]
    assert balanced == pytest.approx(ours["balanced_accuracy"], abs=1e-6)
    assert sum(aucs) / len(aucs) == pytest.approx(ours["macro_auc"], abs=1e-6)
    assert 0.0 < balanced < 1.0  # a real score, not a degenerate one
