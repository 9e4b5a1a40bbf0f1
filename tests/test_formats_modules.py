"""The modules of dataset/formats import each other without a cycle, and no module of the package goes through
the package itself (``dataset.formats``, whose __init__ imports every format module). Read with ``ast``, like
tests/test_architecture.py: every import counts, function-level ones included."""
from tests.test_architecture import ROOT, find_cycle, imports_of

PACKAGE = "dataset.formats"
FOLDER = ROOT / "dataset" / "formats"


def module_name(path) -> str:
    return PACKAGE if path.name == "__init__.py" else f"{PACKAGE}.{path.stem}"


def formats_graph() -> dict[tuple[str, str], list[str]]:
    """``{(module, imported module of the package): ["file:line", ...]}`` over dataset/formats/*.py."""
    modules = {module_name(path) for path in FOLDER.glob("*.py")}
    edges: dict[tuple[str, str], list[str]] = {}
    for path in sorted(FOLDER.glob("*.py")):
        source = module_name(path)
        for module, line in imports_of(path):
            if module in modules and module != source:
                edges.setdefault((source, module), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_no_import_cycle_between_the_format_modules():
    edges = formats_graph()
    cycle = find_cycle(edges)
    assert cycle is None, "import cycle in dataset/formats: " + " -> ".join(cycle)


def test_no_format_module_imports_the_package_itself():
    """``from dataset.formats import X`` inside the package would run __init__, which imports every format."""
    through_package = {edge: where for edge, where in formats_graph().items() if edge[1] == PACKAGE}
    assert not through_package, through_package


def test_the_graph_sees_the_imports_between_the_modules():
    """The checks above would see a cycle: the graph holds the imports that are there."""
    edges = formats_graph()
    assert (f"{PACKAGE}.coco", f"{PACKAGE}.registry") in edges
    assert (f"{PACKAGE}.registry", f"{PACKAGE}.archives") in edges
    assert (PACKAGE, f"{PACKAGE}.masks") in edges
    assert find_cycle({**edges, (f"{PACKAGE}.archives", f"{PACKAGE}.registry"): []}) is not None
