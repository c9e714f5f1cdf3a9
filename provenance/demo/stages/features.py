"""Feature engineering: raw loan applications (CSV) → the `loan_features` feature group (a Delta table).

One commit per raw file, in the order given. Names are not features: the applicant id is a salted
hash of the name, so the feature group holds no name, yet its lineage still leads back to the person.
"""

import hashlib
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

TABLE = "featurestore/loan_features"


def features(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    out = pd.DataFrame({
        "applicant_id": [hashlib.sha256(f"loan-salt:{n}".encode()).hexdigest()[:16] for n in raw["name"]],
        "gender": raw["gender"].astype(str),
        "age": raw["age"].astype("int64"),
        "income": raw["income"].astype("float64"),
        "loan_amount": raw["loan_amount"].astype("float64"),
    })
    out["log_income"] = np.log1p(out["income"])
    out["debt_to_income"] = (out["loan_amount"] / out["income"].clip(lower=1.0)).round(4)
    out["age_band"] = pd.cut(out["age"], [0, 25, 35, 50, 65, 200], labels=["<25", "25-34", "35-49", "50-64", "65+"],
                             right=False).astype(str)
    out["label"] = raw["approved"].astype("int64")
    out["source_file"] = source
    return out


def main(paths: list[str]) -> None:
    for path in paths:
        frame = features(pd.read_csv(path), path.rsplit("/", 1)[-1])
        exists = DeltaTable.is_deltatable(TABLE)
        write_deltalake(TABLE, pa.Table.from_pandas(frame, preserve_index=False), mode="append" if exists else "error")
        print(f"{path}: {len(frame)} rows → {TABLE} version {DeltaTable(TABLE).version()}")


if __name__ == "__main__":
    main(sys.argv[1:])
