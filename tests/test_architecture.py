"""The layers hold: no import cycle between the Django apps, and the plain-Python packages (dataset/, ml/, caching/)
import neither Django nor an app. Every import counts, at module level or inside a function (read with ``ast``,
nothing is imported). annotation_site is the project: it may import every app."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "jobs", "labeling", "curation", "training", "tryon", "prelabel")
PLAIN_PACKAGES = ("dataset", "ml", "caching")
WEB_FRAMEWORKS = ("django", "rest_framework", "django_filters", "drf_spectacular", "celery")
SKIPPED_FOLDERS = {".venv", "var", "node_modules", "__pycache__", ".git", ".tfjs"}

# A page of one app that loads another app's static file makes the first depend on the second as surely
# as an import does. Known exceptions, each with the reason it is still there:
TEMPLATE_EXCEPTIONS: dict[tuple[str, str], str] = {}


def python_files():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if not SKIPPED_FOLDERS.intersection(parts) and not parts[0].startswith("."):
            yield path


def imports_of(path: Path):
    """``(imported module, line)`` for every import in the file, relative ones resolved."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    package = parts[:-1]  # a module's package; for __init__.py the package itself
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                yield ".".join(base + ([node.module] if node.module else [])), node.lineno
            else:
                yield node.module, node.lineno


def app_graph() -> dict[tuple[str, str], list[str]]:
    """``{(app, imported app): ["file:line", ...]}`` over every Python file of the apps."""
    edges: dict[tuple[str, str], list[str]] = {}
    for path in python_files():
        source = path.relative_to(ROOT).parts[0]
        if source not in APPS:
            continue
        for module, line in imports_of(path):
            target = module.split(".")[0]
            if target in APPS and target != source:
                edges.setdefault((source, target), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def find_cycle(edges) -> list[str] | None:
    """One cycle of the directed graph (``[a, b, ..., a]``), or None when it has none."""
    graph: dict[str, set[str]] = {}
    for source, target in edges:
        graph.setdefault(source, set()).add(target)
    state: dict[str, str] = {}  # "open" while on the path, "done" once every way out is known to be acyclic

    def visit(node, path):
        state[node] = "open"
        for following in sorted(graph.get(node, ())):
            if state.get(following) == "open":
                return path[path.index(following):] + [following]
            if following not in state:
                cycle = visit(following, path + [following])
                if cycle:
                    return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start, [start])
            if cycle:
                return cycle
    return None


def describe(cycle, edges) -> str:
    steps = [f"  {a} -> {b}: {', '.join(edges[(a, b)][:3])}" for a, b in zip(cycle, cycle[1:])]
    return "import cycle between apps " + " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_no_import_cycle_between_apps():
    edges = app_graph()
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges)


def test_the_walk_sees_module_and_function_level_imports():
    """The check would see a cycle: it finds the imports that are there, function-level ones included."""
    edges = app_graph()
    assert "prelabel/api.py" in " ".join(edges[("prelabel", "labeling")])
    assert any(where.startswith("labeling/erasure.py") for where in edges[("labeling", "jobs")])  # inside a function
    assert ("labeling", "accounts") in edges and ("jobs", "accounts") in edges
    assert not any(source == "accounts" for source, _ in edges), "accounts is the bottom layer: it imports no app"


def test_find_cycle_names_the_cycle():
    edges = {("jobs", "labeling"): ["jobs/api.py:9"], ("labeling", "jobs"): ["labeling/api.py:21"],
             ("prelabel", "labeling"): ["prelabel/api.py:1"]}
    cycle = find_cycle(edges)
    assert cycle == ["jobs", "labeling", "jobs"]
    assert "jobs -> labeling: jobs/api.py:9" in describe(cycle, edges)
    assert find_cycle({("a", "b"): [], ("b", "c"): [], ("a", "c"): []}) is None


def test_plain_packages_import_neither_django_nor_an_app():
    forbidden = set(APPS) | {"annotation_site"} | set(WEB_FRAMEWORKS)
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in python_files() if path.relative_to(ROOT).parts[0] in PLAIN_PACKAGES
             for module, line in imports_of(path) if module.split(".")[0] in forbidden]
    assert not found, "plain-Python packages must stay free of Django and the apps:\n" + "\n".join(found)


STATIC_REFERENCE = re.compile(r"""\{%\s*static\s+['"]([a-z_]+)/""")


def test_no_page_loads_the_static_files_of_an_app_that_imports_its_app():
    """A template of app A loading app B's static file makes A depend on B: with B importing A, that is a cycle
    (the annotation page used to name prelabel's script; prelabel registers it with labeling/extensions.py now)."""
    edges = app_graph()
    problems = []
    for app in APPS:
        for template in sorted((ROOT / app / "templates").rglob("*.html")):
            for other in set(STATIC_REFERENCE.findall(template.read_text(encoding="utf-8"))) & set(APPS) - {app}:
                cycle = find_cycle({**edges, (app, other): [f"{template.relative_to(ROOT)}"]})
                if cycle and (app, other) not in TEMPLATE_EXCEPTIONS:
                    problems.append(describe(cycle, {**edges, (app, other): [str(template.relative_to(ROOT))]}))
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------------
# ml/: no import cycle between its files, no oversized file without a reason
# ----------------------------------------------------------------------------------------------------

ML_MAX_LINES = 600


def ml_modules() -> dict[str, Path]:
    """``{dotted module name: file}`` for every Python file of ml/ (``ml.export`` is ml/export/__init__.py)."""
    modules = {}
    for path in python_files():
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[0] == "ml":
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_files(path: Path, modules: dict[str, Path]):
    """``(imported ml module, line)`` for every import of the file that reaches a file of ml/, at any level:
    ``from ml.models import cascade`` reaches ml.models.cascade, and importing ``a.b.c`` runs the
    ``__init__.py`` of ``a`` and ``a.b`` too, so those count as imported."""
    names = {}  # line -> names of a `from X import names`
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.ImportFrom):
            names.setdefault(node.lineno, []).extend(alias.name for alias in node.names)
    for module, line in imports_of(path):
        if module is None:
            continue
        targets = {f"{module}.{name}" for name in names.get(line, ()) if f"{module}.{name}" in modules}
        parts = module.split(".")
        targets |= {".".join(parts[:k]) for k in range(1, len(parts) + 1) if ".".join(parts[:k]) in modules}
        for target in sorted(targets):
            yield target, line


def ml_graph() -> dict[tuple[str, str], list[str]]:
    modules = ml_modules()
    edges: dict[tuple[str, str], list[str]] = {}
    for name, path in modules.items():
        for target, line in imported_files(path, modules):
            if target != name:
                edges.setdefault((name, target), []).append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def test_no_import_cycle_between_the_files_of_ml():
    edges = ml_graph()
    cycle = find_cycle(edges)
    assert cycle is None, describe(cycle, edges).replace("between apps", "between files of ml/")


def test_the_ml_walk_sees_submodule_package_and_function_level_imports():
    edges = ml_graph()
    assert ("ml.export.pipeline", "ml.export.onnx") in edges  # `from . import coreml, onnx, tfjs_driver`
    assert ("ml.models.cascade", "ml.models") in edges  # the package's __init__ runs first
    assert any(where.startswith("ml/predict.py") for where in edges[("ml.predict", "ml.checkpoint")])  # in a function
    assert ("ml.predict", "ml.train") not in edges and ("ml.evaluate", "ml.train") not in edges


def test_ml_files_stay_under_600_lines_unless_their_docstring_says_why():
    too_long = []
    for name, path in sorted(ml_modules().items()):
        source = path.read_text(encoding="utf-8")
        lines = len(source.splitlines())
        docstring = ast.get_docstring(ast.parse(source)) or ""
        if lines > ML_MAX_LINES and f"over {ML_MAX_LINES} lines" not in docstring:
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, (f"ml/ files over {ML_MAX_LINES} lines whose docstring does not say why "
                          f"(\"over {ML_MAX_LINES} lines: ...\"):\n" + "\n".join(too_long))


def test_dataset_does_not_import_ml():
    """dataset/ (labels, rasters, formats) sits below ml/ (docs/architecture.md): ml may read labels, never
    the other way round."""
    found = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for path in python_files() if path.relative_to(ROOT).parts[0] == "dataset"
             for module, line in imports_of(path) if module and module.split(".")[0] == "ml"]
    assert not found, "\n".join(found)
