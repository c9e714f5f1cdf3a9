"""Train the loan-approval model (scikit-learn) on a training dataset.

Usage: train.py TD_DIR MODEL_DIR
"""

import json
import os
import pickle
import sys

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["age", "log_income", "loan_amount", "debt_to_income"]
C = 1.0  # regularisation strength


def main(td_dir: str, model_dir: str) -> None:
    train = pd.read_parquet(f"{td_dir}/train.parquet")
    test = pd.read_parquet(f"{td_dir}/test.parquet")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=500))
    model.fit(train[FEATURES], train["label"])
    scores = model.predict_proba(test[FEATURES])[:, 1]
    metrics = {"accuracy": round(float(accuracy_score(test["label"], scores > 0.5)), 4),
               "roc_auc": round(float(roc_auc_score(test["label"], scores)), 4),
               "train_rows": len(train), "C": C}
    os.makedirs(model_dir, exist_ok=True)
    with open(f"{model_dir}/model.pkl", "wb") as f:
        pickle.dump(model, f)
    with open(f"{model_dir}/metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    print(f"model → {model_dir}: {metrics}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
