"""Bias evaluation: the model's approval rates and true-positive rates by gender on the test data.

Usage: evaluate_bias.py MODEL_DIR TD_DIR REPORT
"""

import json
import os
import pickle
import sys

import pandas as pd

FEATURES = ["age", "log_income", "loan_amount", "debt_to_income"]


def main(model_dir: str, td_dir: str, report: str) -> None:
    with open(f"{model_dir}/model.pkl", "rb") as f:
        model = pickle.load(f)
    test = pd.read_parquet(f"{td_dir}/test.parquet")
    test["approved"] = model.predict(test[FEATURES])
    groups: dict[str, dict[str, float | int | None]] = {}
    approval: list[float] = []
    tprs: list[float] = []
    for gender, g in test.groupby("gender"):
        positives = g[g["label"] == 1]
        rate = round(float(g["approved"].mean()), 4)
        tpr = round(float(positives["approved"].mean()), 4) if len(positives) else None
        groups[str(gender)] = {"n": len(g), "approval_rate": rate, "true_positive_rate": tpr}
        approval.append(rate)
        if tpr is not None:
            tprs.append(tpr)
    parity = round(max(approval) - min(approval), 4)
    result = {"model": model_dir, "test_data": td_dir, "groups": groups,
              "demographic_parity_difference": parity,
              "equal_opportunity_difference": round(max(tprs) - min(tprs), 4) if tprs else None,
              "passed": parity <= 0.2}
    os.makedirs(os.path.dirname(report) or ".", exist_ok=True)
    with open(report, "w") as f:
        json.dump(result, f, indent=1)
    print(f"fairness → {report}: parity difference {parity}, {'passed' if parity <= 0.2 else 'FAILED'}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
