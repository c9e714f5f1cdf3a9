"""An MLflow workflow, run by the CDC tests with a real MLflow (3.x or 2.x) in its own virtual environment.

    python mlflow_workflow.py POSTGRES_URI WORKDIR OUT_JSON       # the workflow
    python mlflow_workflow.py POSTGRES_URI --init                 # only MLflow's schema (its migrations)

Everything MLflow records goes to PostgreSQL (its tracking and registry stores; MLflow creates its
schema with its own migrations); artifacts go to WORKDIR. The workflow is what a user does:
- run A (train.py) logs the loans dataset (a pandas dataset whose source is WORKDIR/loans.csv), a
  parameter and a model; its model is registered as version 1 of "loan-scoring";
- run B (train.py again) logs the loans dataset (the same rows: the same digest) and a second dataset
  (WORKDIR/rates.csv), and a model registered as version 2, which gets the alias "champion", a version
  tag, and (MLflow 2.x) the stage Production while version 1 goes to Archived;
- run C (other.py) logs only WORKDIR/other.csv and a model registered as version 3, which is then
  deleted; run C is deleted too;
- its model is also registered as "scratch" (a registered-model tag set and deleted), renamed
  "scratch-2", and as "doomed", which is deleted (delete_registered_model);
- run D (restore.py) logs a dataset read over HTTP, sets and deletes a tag, (3.x) fails to log a model
  (log_model raises: the logged model is FAILED); it is deleted, then restored.
OUT_JSON receives the ids MLflow chose (runs, logged models, dataset digests), for the test to check.
This file is not a test module: it imports MLflow, which only the virtual environment has.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

MODEL = "loan-scoring"


class Scorer(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [0.5] * len(model_input)


def log_model() -> str:
    """Log the model of the active run; its registrable URI (``models:/m-…`` in 3.x, ``runs:/…`` in 2.x)."""
    if int(mlflow.__version__.split(".")[0]) >= 3:
        info = mlflow.pyfunc.log_model(name="model", python_model=Scorer())
        return str(info.model_uri)
    mlflow.pyfunc.log_model(artifact_path="model", python_model=Scorer())
    return f"runs:/{mlflow.active_run().info.run_id}/model"


def dataset(path: Path, frame: pd.DataFrame, name: str) -> object:
    frame.to_csv(path, index=False)
    return mlflow.data.from_pandas(frame, source=str(path), name=name)


def main() -> None:
    if sys.argv[2] == "--init":  # the stores create and migrate their schema when first opened
        MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1]).search_experiments()
        MlflowClient(tracking_uri=sys.argv[1], registry_uri=sys.argv[1]).search_registered_models()
        return
    uri, workdir, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    os.chdir(workdir)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    exp = mlflow.set_experiment("loan-scoring")
    client = MlflowClient()
    loans = pd.DataFrame({"income": [30, 52, 71, 18], "approved": [0, 1, 1, 0]})
    result: dict[str, object] = {"mlflow": mlflow.__version__, "experiment_id": exp.experiment_id}
    major = int(mlflow.__version__.split(".")[0])

    def run(script: str, inputs: list[tuple[Path, pd.DataFrame, str]]) -> tuple[str, str, dict[str, str]]:
        # what `python train.py` records: the script as mlflow.source.name (set explicitly: the
        # workflow is one process standing in for three scripts)
        with mlflow.start_run(tags={"mlflow.source.name": str(workdir / script),
                                    "mlflow.source.git.commit": "c0ffee" + script[:2]}) as active:
            digests = {}
            for path, frame, name in inputs:
                ds = dataset(path, frame, name)
                mlflow.log_input(ds, context="training")
                digests[name] = ds.digest  # type: ignore[attr-defined]
            mlflow.log_param("max_depth", 4)
            model_uri = log_model()
            return active.info.run_id, model_uri, digests

    run_a, model_a, digests_a = run("train.py", [(workdir / "loans.csv", loans, "loans")])
    v1 = mlflow.register_model(model_a, MODEL)
    rates = pd.DataFrame({"grade": ["A", "B"], "rate": [0.04, 0.07]})
    run_b, model_b, digests_b = run("train.py", [(workdir / "loans.csv", loans, "loans"),
                                                 (workdir / "rates.csv", rates, "rates")])
    v2 = mlflow.register_model(model_b, MODEL)
    client.set_registered_model_alias(MODEL, "champion", v2.version)
    client.set_model_version_tag(MODEL, v2.version, "validated", "true")
    client.set_model_version_tag(MODEL, v1.version, "validated", "false")
    if major < 3:  # stages are deprecated in 3.x
        client.transition_model_version_stage(MODEL, v1.version, "Archived")
        client.transition_model_version_stage(MODEL, v2.version, "Production")
    other = pd.DataFrame({"x": [1, 2, 3]})
    run_c, model_c, digests_c = run("other.py", [(workdir / "other.csv", other, "other")])
    v3 = mlflow.register_model(model_c, MODEL)
    client.delete_model_version(MODEL, v3.version)
    client.create_registered_model("scratch", tags={"owner": "bob"})
    client.delete_registered_model_tag("scratch", "owner")
    mlflow.register_model(model_c, "scratch")
    client.rename_registered_model("scratch", "scratch-2")
    mlflow.register_model(model_c, "doomed")
    client.delete_registered_model("doomed")
    client.delete_run(run_c)

    with mlflow.start_run(tags={"mlflow.source.name": str(workdir / "restore.py")}) as active:
        remote = mlflow.data.from_pandas(rates, source="https://example.com/rates.csv", name="remote")
        mlflow.log_input(remote, context="training")
        mlflow.set_tag("team", "credit")
        mlflow.delete_tag("team")
        if major >= 3:  # a model whose saving raises: MLflow marks it FAILED
            try:
                mlflow.pyfunc.log_model(name="broken", python_model=Scorer(),
                                        code_paths=[str(workdir / "missing.py")])
            except Exception:
                result["failed_model"] = mlflow.last_logged_model().model_id
            else:
                raise AssertionError("log_model with a missing code path did not fail")
        run_d = active.info.run_id
    client.delete_run(run_d)
    client.restore_run(run_d)
    result.update({
        "runs": {"a": run_a, "b": run_b, "c": run_c, "d": run_d},
        "models": {"a": model_a, "b": model_b, "c": model_c},
        "versions": {"a": v1.version, "b": v2.version, "c": v3.version},
        "digests": {**digests_a, **digests_b, **digests_c, "remote": remote.digest},  # type: ignore[attr-defined]
    })
    out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
