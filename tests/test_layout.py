"""The package's layout rules (docs/architecture.md), checked on the source as it is."""

import importlib.util
import pathlib

import pytest

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "import_graph.py"


@pytest.fixture(scope="module")
def import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def graph(import_graph):
    return import_graph.build_graph()


def test_the_layout_has_no_breach(import_graph, graph):
    assert import_graph.check(*graph) == []


def test_function_level_imports_count_for_circles(import_graph, graph):
    assert import_graph.find_cycles(
        {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p.a"}}
    ) == [["p.a", "p.b", "p.c"]]
    files = graph[0]
    # The session imports media.face inside a function only: the graph sees it.
    internal, _ = import_graph.read_imports(files["keras_autalk.inference.session"], files)
    assert "keras_autalk.media.face" in internal
    source = files["keras_autalk.inference.session"].read_text()
    assert "\nfrom keras_autalk.media import face" not in source


def test_a_breach_is_reported_in_a_sentence(import_graph, graph):
    files, imports, libraries, lines = graph
    imports = {module: set(targets) for module, targets in imports.items()}
    libraries = {module: set(names) for module, names in libraries.items()}
    imports["keras_autalk.media.face"].add("keras_autalk.models.talker")
    imports["keras_autalk.models.talker"].add("keras_autalk.media.face")
    libraries["keras_autalk.media.video"].add("tensorflow")
    problems = import_graph.check(files, imports, libraries, lines)
    assert (
        "keras_autalk.media.face (media) imports keras_autalk.models.talker (models), "
        "which media may not import."
    ) in problems
    assert "keras_autalk.media.video imports tensorflow, which media may not import." in problems
    assert any(
        problem.startswith("import circle: ") and "keras_autalk.media.face" in problem
        for problem in problems
    )


def test_every_room_is_in_the_rules(import_graph, graph):
    files = graph[0]
    assert {import_graph.room_of(module) for module in files} <= set(import_graph.ALLOWED)
