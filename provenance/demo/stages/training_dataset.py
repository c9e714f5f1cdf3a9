"""Training dataset: the feature group at one version → train / test split (parquet files).

Usage: training_dataset.py TABLE VERSION OUT_DIR
"""

import os
import sys

import pyarrow.parquet as pq
from deltalake import DeltaTable

FEATURES = ["age", "log_income", "loan_amount", "debt_to_income"]


def main(table: str, version: int, out_dir: str) -> None:
    # read the files of that version with pyarrow (deltalake's own reader can abort at exit: delta-rs #2184)
    frame = pq.read_table(DeltaTable(table, version=version).file_uris()).to_pandas()
    frame = frame.sort_values("applicant_id").reset_index(drop=True)
    test = frame.index % 5 == 0  # deterministic 80/20 split
    os.makedirs(out_dir, exist_ok=True)
    columns = ["applicant_id", "gender", *FEATURES, "label"]
    frame.loc[~test, columns].to_parquet(f"{out_dir}/train.parquet", index=False)
    frame.loc[test, columns].to_parquet(f"{out_dir}/test.parquet", index=False)
    print(f"{table}@{version}: {int((~test).sum())} train / {int(test.sum())} test rows → {out_dir}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
