from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from provenance.errors import RulesError
from provenance.processor.rules import Rules, default_rules, load_rules


@pytest.mark.parametrize(
    ("uri", "type_", "artifact", "version", "project"),
    [
        ("file:///Projects/loan/Models/m/3/model.pkl", "model", "file:///Projects/loan/Models/m", "3", "loan"),
        ("file:///Projects/loan/loan_Training_Datasets/td_2/a.csv", "training_dataset",
         "file:///Projects/loan/loan_Training_Datasets/td", "2", "loan"),
        ("file:///Projects/loan/loan_featurestore.db/fg_1/part-0.parquet", "feature_group",
         "file:///Projects/loan/loan_featurestore.db/fg_1", None, "loan"),
        ("file:///Projects/p/Experiments/e1/x.json", "experiment", "file:///Projects/p/Experiments/e1", None, "p"),
        ("file:///Projects/p/Deployments/d/model.pkl", "deployment", "file:///Projects/p/Deployments/d", None, "p"),
        ("file:///Projects/p/Logs/app1/stdout.log", "log", "file:///Projects/p/Logs/app1/stdout.log", None, "p"),
        ("file:///Projects/p/Resources/raw/a.csv", "resource", "file:///Projects/p/Resources/raw/a.csv", None, "p"),
        ("file:///Projects/p/notes.csv", "dataset", "file:///Projects/p/notes.csv", None, "p"),
        ("file:///w/.dvc/tmp/btime", "tool_state", "file:///w/.dvc", None, None),
        ("file:///var/tmp/dvc/repo/abc/db", "tool_state", "file:///var/tmp/dvc", None, None),
        ("file:///x/__pycache__/a.cpython-311.pyc", "tool_state", "file:///x/__pycache__", None, None),
        ("file:///home/u/data/raw/2026/jan.csv", "dataset", "file:///home/u/data/raw/2026/jan.csv", None, None),
        ("file:///home/u/serving/clf/model.onnx", "deployment", "file:///home/u/serving/clf", None, None),
        ("file:///home/u/models/clf/v3/w.pt", "model", "file:///home/u/models/clf", "v3", None),
        ("file:///home/u/data/raw/people.csv", "dataset", "file:///home/u/data/raw/people.csv", None, None),
        ("file:///home/u/data/processed/feats/p0.parquet", "dataset", "file:///home/u/data/processed/feats",
         None, None),
        ("file:///tmp/m.safetensors", "model", "file:///tmp/m.safetensors", None, None),
        ("file:///tmp/x.tfrecord", "dataset", "file:///tmp/x.tfrecord", None, None),
        ("file:///tmp/notes.txt", "file", "file:///tmp/notes.txt", None, None),
        ("delta:///lake/t@4", "file", "file:///lake/t", "4", None),
        ("s3://bucket/Projects/p/Models/m/1/w.h5", "model", "s3://bucket/Projects/p/Models/m", "1", "p"),
    ],
)
def test_default_rules(uri: str, type_: str, artifact: str, version: str | None, project: str | None) -> None:
    ref = default_rules().classify(uri)
    assert (ref.type, ref.uri, ref.version, ref.project) == (type_, artifact, version, project)


def test_ignore_and_job_names() -> None:
    r = default_rules()
    assert r.ignored("file:///proc/12/status") and not r.ignored("file:///x/__pycache__/a.cpython-311.pyc")
    assert r.lineage_exclude == {"log", "tool_state"}
    assert not r.ignored("file:///x/a.py")
    # /dev/shm holds real files (a staging area), but its POSIX semaphores (multiprocessing's locks) no data
    assert r.ignored("file:///dev/null/x") and r.ignored("file:///dev/shm/sem.joblib-21630-i2bpxk66")
    assert not r.ignored("file:///dev/shm/stage/part-0.csv") and not r.ignored("file:///dev/shm/semantics.csv")
    assert r.jobs.job_name({"name": "train"}) == "train"
    assert r.jobs.job_name({"command": "python3 -u /src/train.py --lr 1"}) == "train.py"
    assert r.jobs.job_name({"command": ["python", "-m", "pkg.train"]}) == "pkg.train"
    assert r.jobs.job_name({"command": "sort -u a.txt"}) == "sort"
    assert r.jobs.job_name({}) is None
    assert "pii" in r.propagate


def test_extra_rules_take_precedence(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text('rules:\n  - name: my-models\n    match: "/lab/{name}/ckpt-{version:\\\\d+}/**"\n'
                     '    type: model\n    artifact: "/lab/{name}"\n')
    r = load_rules(extra=[extra])
    ref = r.classify("file:///lab/bert/ckpt-7/w.bin")
    assert (ref.type, ref.uri, ref.version, ref.rule) == ("model", "file:///lab/bert", "7", "my-models")
    assert r.classify("file:///tmp/a.csv").type == "dataset"  # defaults still apply


def test_replacing_rules(tmp_path: Path) -> None:
    f = tmp_path / "only.yaml"
    f.write_text('types: [thing]\nrules:\n  - name: all\n    match: "/**"\n    type: thing\n')
    r = load_rules(f)
    assert r.classify("file:///x/y.csv").type == "thing"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('rules:\n  - name: a\n    match: "/x/{name"\n    type: model\n', "rule 'a' (line 2): unbalanced"),
        ('rules:\n  - name: a\n    match: "x/{name}"\n    type: model\n', "rule 'a' (line 2): match must start"),
        ('types: [model]\nrules:\n  - name: ok\n    match: "/a/**"\n    type: model\n  - name: b\n'
         '    match: "/b/**"\n    type: modle\n', "rule 'b' (line 6): unknown type 'modle'"),
        ('rules:\n  - name: c\n    match: "/c/{name}"\n    type: model\n    artifact: "/c/{nmae}"\n',
         "rule 'c' (line 2): 'artifact' uses ['nmae']"),
        ('rules:\n  - name: d\n    match: "/d/{x:[}"\n    type: model\n', "rule 'd' (line 2): bad regex"),
        ('rules:\n  - name: e\n    type: model\n', "rule 'e' (line 2): needs 'match'"),
        ('rules:\n  - name: f\n    match: "/f"\n    type: model\n    colour: red\n', "rule 'f' (line 2): unknown key"),
        ('rules:\n  - name: g\n    match: "/g"\n    type: model\n  - name: g\n    match: "/h"\n    type: model\n',
         "rule 'g' (line 5): a rule with this name is already defined"),
        ("rules: [\n", "line"),
    ],
)
def test_invalid_rules_fail_naming_the_rule(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(extra=[f])
    assert message in str(info.value)
    assert "bad.yaml" in str(info.value)


def _one_by_one(rules: Rules) -> Rules:
    """The same rules, tried in turn instead of as one alternation."""
    plain = dataclasses.replace(rules, _cache={})  # a cache of its own: nothing classified by the other
    object.__setattr__(plain, "_rule_any", None)
    return plain


PATHS = [
    "file:///Projects/loan/Models/m/3/model.pkl", "file:///Projects/loan/Models/m",
    "file:///Projects/loan/loan_Training_Datasets/td_2/a.csv", "file:///Projects/loan/other_Training_Datasets/td_2/a",
    "file:///Projects/loan/loan_featurestore.db/fg_1/part-0.parquet", "file:///Projects/p/Raw/d/x.csv",
    "file:///Projects/p/Models", "file:///Projects/p/Resources/r/a/b.py", "file:///home/u/serving/clf/model.onnx",
    "file:///home/u/models/clf/v3/w.pt", "file:///home/u/models/clf/latest/w.pt", "file:///a/reports/x/y/eval.json",
    "file:///home/u/data/raw/people.csv", "file:///lake/t/_delta_log/0001.json", "file:///models/bert",
    "file:///tmp/m.safetensors", "file:///tmp/x.csv.gz", "file:///tmp/notes.txt", "file:///tmp/a b/c%d.csv",
    "delta:///lake/t@4", "s3://bucket/Projects/p/Models/m/1/w.h5", "hdfs://nn:8020/x/feature_store/fg/p.parquet",
    "file:///x/training-datasets/td/v2/p.tfrecord", "file:///", "file:///run.sh",
]


@pytest.mark.parametrize("uri", PATHS)
def test_one_alternation_classifies_as_the_rules_one_by_one(uri: str) -> None:
    rules = default_rules()
    plain = _one_by_one(rules)
    assert rules._rule_any is not None and plain._cache is not rules._cache
    assert rules._classify(uri) == plain._classify(uri)


def test_a_field_regex_that_refers_to_groups_makes_the_rules_go_one_by_one(tmp_path: Path) -> None:
    extra = tmp_path / "mine.yaml"
    extra.write_text('rules:\n  - name: twice\n    match: "/lab/{name:(\\\\w)\\\\2\\\\w*}/**"\n    type: model\n')
    r = load_rules(extra=[extra])
    assert r._rule_any is None  # \2 would name another group inside one alternation
    assert r.classify("file:///lab/aab/w.bin").rule == "twice"
    assert r.classify("file:///lab/abb/w.bin").rule != "twice"
    assert r.classify("file:///tmp/a.csv").type == "dataset"
