from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from provenance.graph.model import CREATED, DELETED, MODIFIED, READ, Touch
from provenance.processor.versions import resolve_artifact

A = "file:///d/x"


def t(app: str, op: str, ts: int, version: str = "") -> Touch:
    return Touch(app, A, op, A, version, ts, ts)


def edges(touches: list[Touch]) -> set[tuple[str, str, str]]:
    return {(e.app, e.rel, e.version) for e in resolve_artifact(A, touches).edges}


def test_a_write_after_a_read_makes_a_new_version() -> None:
    got = resolve_artifact(A, [t("r1", "read", 5), t("w", "write", 10), t("r2", "read", 20)])
    assert [(v.key, v.label, v.creator) for v in got.versions] == [("~0", "initial", None), ("~w", "v1", "w")]
    assert edges([t("r1", "read", 5), t("w", "write", 10), t("r2", "read", 20)]) == {
        ("r1", READ, "~0"), ("w", MODIFIED, "~w"), ("r2", READ, "~w")}


def test_reads_follow_the_newest_version_born_before_them_whatever_the_order() -> None:
    touches = [t("c1", "create", 1), t("r", "read", 15), t("c2", "write", 10), t("r0", "read", 5)]
    assert edges(touches) == edges(touches[::-1]) == {
        ("c1", CREATED, "~c1"), ("c2", MODIFIED, "~c2"), ("r", READ, "~c2"), ("r0", READ, "~c1")}


def test_reading_back_own_output_is_not_an_input_but_modify_in_place_is() -> None:
    assert edges([t("a", "create", 1), t("a", "read", 2)]) == {("a", CREATED, "~a")}
    assert edges([t("p", "create", 1), t("a", "read", 2), t("a", "write", 3)]) == {
        ("p", CREATED, "~p"), ("a", READ, "~p"), ("a", MODIFIED, "~a")}


def test_delete_and_temporary_files() -> None:
    assert edges([t("a", "create", 1), t("a", "delete", 2)]) == {("a", CREATED, "~a"), ("a", DELETED, "~a")}
    assert edges([t("p", "create", 1), t("a", "delete", 2)]) == {("p", CREATED, "~p"), ("a", DELETED, "~p")}


def test_table_commits_own_the_writers_unversioned_files() -> None:
    touches = [t("w0", "create", 1), t("w0", "commit", 2, "0"), t("r", "read", 3),
               t("w1", "read", 4), t("w1", "write", 5), t("w1", "commit", 6, "1"), t("r2", "read", 7, "0")]
    got = resolve_artifact(A, touches)
    assert [v.key for v in got.versions] == ["0", "1"]
    assert edges(touches) == {("w0", CREATED, "0"), ("r", READ, "0"), ("w1", READ, "0"), ("w1", MODIFIED, "1"),
                              ("r2", READ, "0")}


def test_rename_moves_content() -> None:
    assert edges([t("p", "create", 1), t("m", "rename_from", 2)]) == {
        ("p", CREATED, "~p"), ("m", READ, "~p"), ("m", DELETED, "~p")}


def test_a_single_touch_resolves_as_the_general_path_does() -> None:
    """The shortcut for an artifact touched once gives exactly the general resolution, for every op."""
    from provenance.processor.versions import _resolve

    for op in ("create", "read", "write", "delete", "rename_from", "rename_to", "commit"):
        for version in ("", "3"):
            touch = [Touch("app-1", A, op, A, version, 10, 40)]
            assert resolve_artifact(A, touch) == _resolve(A, touch), (op, version)


_APPS = st.sampled_from(["a", "b", "c"])
_TIMES = st.integers(0, 6)


@st.composite
def _touch(draw: st.DrawFn, ops: list[str], versions: list[str]) -> Touch:
    first = draw(_TIMES)
    return Touch(draw(_APPS), A, draw(st.sampled_from(ops)), A, draw(st.sampled_from(versions)), first,
                 first + draw(st.integers(0, 3)))


_ANY = _touch(["create", "read", "write", "delete", "rename_from", "rename_to", "commit"], ["", "", "1", "2"])


@st.composite
def _one_writer_history(draw: st.DrawFn) -> list[Touch]:
    """Unversioned writes by one app, anything read-like by any: the shape `_one_writer` takes."""
    writes = draw(st.lists(_touch(["create", "write", "rename_to"], [""]), min_size=1, max_size=3))
    writer = writes[0].app
    reads = draw(st.lists(_touch(["read", "delete", "rename_from"], [""]), max_size=5))
    return [w._replace(app=writer) for w in writes] + reads


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_ANY, min_size=1, max_size=6), _one_writer_history()))
def test_every_shortcut_resolves_as_the_general_path_does(touches: list[Touch]) -> None:
    from provenance.processor.versions import _resolve

    assert resolve_artifact(A, touches) == _resolve(A, touches)


@settings(max_examples=50, deadline=None)
@given(_one_writer_history())
def test_the_one_writer_shortcut_takes_its_shape(touches: list[Touch]) -> None:
    from provenance.processor.versions import _one_writer

    assert _one_writer(A, touches) is not None  # so the property above exercises it
