"""The package's shape: layers that import one way, no cycle, small modules and functions, and
training and evaluation code that names no likelihood.

Layers: `models`, `data`, `training`, `hub`, `evaluation`, `augmentation`, `cli`, each a
subpackage (`augmentation` draws on the four below it: models, data, training, evaluation); the
foundation beneath them all (the package's top-level underscore modules, `logs`, `images`,
`version`); and the public face above them (`cvae/__init__.py`, `cvae._generate`).
"""

import ast
import io
import tokenize
from pathlib import Path

import pytest

import cvae
from cvae.models.likelihoods import list_likelihoods

PACKAGE = Path(cvae.__file__).parent
LAYERS = ("models", "data", "training", "hub", "evaluation", "augmentation", "cli")
TOP = {"cvae", "cvae._generate", "cvae._moved"}

# layer -> the layers it must never import. Two edges are allowed where the design card
# puts a method on the model class: `ConditionalVAE.from_pretrained` (models -> the Hub
# layer's mixin, as a model inherits huggingface_hub's ModelHubMixin) and
# `ConditionalVAE.from_data` (models -> the data layer's one entry). Nothing else.
FORBIDDEN = {
    "models": {"training", "evaluation", "augmentation", "cli", "hub", "data", "top"},
    "data": {"models", "training", "hub", "evaluation", "augmentation", "cli", "top"},
    "hub": {"models", "data", "training", "evaluation", "augmentation", "cli", "top"},
    "training": {"augmentation", "cli", "top"},
    "evaluation": {"training", "augmentation", "cli", "top"},
    "augmentation": {"cli", "top"},
    "cli": set(),
    "foundation": {*LAYERS, "top"},
    "top": {"cli"},
}
ALLOWED = {("cvae.models.conditional_vae", "cvae.hub.mixin"),
           ("cvae.models._from_data", "cvae.data._sources"),
           ("cvae.models._from_data", "cvae.data._labelled")}


def name(path: Path) -> str:
    return ".".join(["cvae", *path.relative_to(PACKAGE).with_suffix("").parts]).removesuffix(".__init__")


MODULES = {name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    if module in TOP:
        return "top"
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "foundation"


def imports(path: Path) -> set[str]:
    """Every cvae module that `path` imports: at the top, in functions, for type checking."""
    module = name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            # `from cvae.data import _folders` imports a module; `from cvae.data import X`, the package
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {m for m in found if m in MODULES and m != module}


def graph() -> dict[str, set[str]]:
    """Module -> the cvae modules it imports."""
    return {name(p): imports(p) for p in PACKAGE.rglob("*.py")}


def broken_rules(edges: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                  if layer(b) in FORBIDDEN[layer(a)] and (a, b) not in ALLOWED)


def test_the_layers_are_subpackages_that_say_what_they_are():
    for sub in LAYERS:
        init = PACKAGE / sub / "__init__.py"
        assert init.is_file(), sub
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"cvae/{sub}/__init__.py says nothing of its layer"
        assert any(isinstance(n, ast.Assign) and n.targets[0].id == "__all__" for n in tree.body), sub


def test_imports_flow_one_way_between_the_layers():
    assert broken_rules(graph()) == []


def test_the_rule_check_finds_a_broken_rule():
    edges = graph()
    edges["cvae.models.conditional_vae"] = edges["cvae.models.conditional_vae"] | {"cvae.training.trainer"}
    edges["cvae.hub._pretrained"] = edges["cvae.hub._pretrained"] | {"cvae.models.conditional_vae"}
    assert broken_rules(edges) == ["cvae.hub._pretrained -> cvae.models.conditional_vae",
                                   "cvae.models.conditional_vae -> cvae.training.trainer"]


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    done, path = set(), []

    def visit(node):
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return None
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if cycle := visit(nxt):
                return cycle
        path.pop()
        done.add(node)
        return None

    return next((c for node in sorted(edges) if (c := visit(node))), None)


def test_the_import_graph_has_no_cycle():
    # A subpackage's __init__ imports its modules, which import their siblings by full
    # path (through the __init__): those edges are the package's own, not a cycle.
    edges = {a: {b for b in targets if not (b + ".").startswith(a.rsplit(".", 1)[0] + ".")
                 or MODULES[b].name != "__init__.py"} for a, targets in graph().items()}
    assert find_cycle(edges) is None


def test_the_cycle_check_finds_a_cycle():
    edges = graph()
    edges["cvae.hub._pretrained"] = edges["cvae.hub._pretrained"] | {"cvae.models.conditional_vae"}
    cycle = find_cycle(edges)
    assert cycle and "cvae.hub._pretrained" in cycle and "cvae.models.conditional_vae" in cycle


def code_lines(source: str, first: int = 1, last: int | None = None) -> int:
    """Lines holding code between `first` and `last`: no docstring, comment or blank line."""
    tree = ast.parse(source)
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if not isinstance(body, list):
            continue
        for i, stmt in enumerate(body):  # docstrings, and the strings that document attributes
            if (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                    and (i == 0 or isinstance(body[i - 1], (ast.Assign, ast.AnnAssign)))):
                docs.update(range(stmt.lineno, stmt.end_lineno + 1))
    lines = set()
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
            tokenize.ENDMARKER}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip:
            lines |= {n for n in range(token.start[0], token.end[0] + 1) if n not in docs}
    return len({n for n in lines if first <= n <= (last or n)})


def test_code_lines_leave_out_docstrings_comments_and_blank_lines():
    source = 'def f(x):\n    """Doc.\n\n    More.\n    """\n    # why\n\n    return (x +\n            1)\n'
    assert code_lines(source) == 3


def test_no_module_is_over_300_code_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := code_lines(p.read_text())) > 300}
    assert long == {}


def test_no_function_is_over_60_code_lines_but_the_parser():
    long = {}
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name != "build_parser":
                if (n := code_lines(source, node.lineno, node.end_lineno)) > 60:
                    long[f"{path.relative_to(PACKAGE)}:{node.name}"] = n
    assert long == {}


@pytest.mark.parametrize("module", ["cvae.training.trainer", "cvae.training._engine",
                                    "cvae.evaluation.metrics", "cvae.cli._train"])
def test_training_and_evaluation_name_no_likelihood(module):
    """They call model.loss and the likelihood object; a new likelihood needs no edit there."""
    text = MODULES[module].read_text()
    assert not [lik for lik in list_likelihoods() if f'"{lik}"' in text], module
