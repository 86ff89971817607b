"""The Hub path against real servers on 127.0.0.1: olah (downloads) and our upload fixture.

Every client call here is the real huggingface_hub, in a fresh process pointed at the
server with HF_ENDPOINT, as a user's would be.
"""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hub_server import BrokenHub, Olah, UploadHub, commit_files, free_port, git, model_repo
from refusals import assert_refused

import cvae

pytestmark = pytest.mark.slow  # Hub servers in subprocesses

MNIST_MLP = cvae.hub.BUNDLED_DIR / "mnist-mlp"


def python(code: str, endpoint: str, hf_home: Path, offline: bool = False):
    """Run `code` in a fresh interpreter whose huggingface_hub talks to `endpoint`."""
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home), "HF_TOKEN": "hf_test"}
    env.pop("HF_HUB_OFFLINE", None)
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)


def last_line(result) -> str:
    return (result.stderr.strip() or result.stdout.strip()).splitlines()[-1]


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    mirrors = root / "mirrors"
    mirrors.mkdir()
    upload, olah = UploadHub(mirrors), Olah(mirrors, root / "olah")
    yield type("Hub", (), {"mirrors": mirrors, "upload": upload, "olah": olah, "root": root})
    olah.stop()
    upload.stop()


PUSH = """
import torch, cvae
from safetensors.torch import save_file
torch.manual_seed({seed})
data = cvae.load_dataset("mnist", train=False)
model = cvae.ConditionalVAE(class_names=data.class_names)
cvae.Trainer(model, (data.images[:500], data.labels[:500]), epochs=1, seed={seed}, verbose=False).train()
url = model.push_to_hub("org/cvae-test", commit_message="seed {seed}")
samples = model.sample(7, 4, generator=torch.Generator().manual_seed(0))
save_file({{"samples": samples}}, "{out}")
print(url)
"""

LOAD = """
import torch, cvae
from safetensors.torch import save_file
model = cvae.ConditionalVAE.from_pretrained("org/cvae-test", revision={revision!r})
save_file({{"samples": model.sample(7, 4, generator=torch.Generator().manual_seed(0))}}, "{out}")
"""


def test_push_then_load_by_id_and_commit_in_a_fresh_process(hub, tmp_path):
    from safetensors.torch import load_file

    shas = []
    for seed in (1, 2):  # two commits: main moves on, the first stays reachable by its sha
        result = python(PUSH.format(seed=seed, out=tmp_path / f"pushed{seed}.safetensors"),
                        hub.upload.url, tmp_path / "hf")
        assert result.returncode == 0, result.stderr
        shas.append(result.stdout.strip().rsplit("/", 1)[1])
    assert ("POST", "/api/models/org/cvae-test/commit/main") in hub.upload.requests
    repo = model_repo(hub.mirrors, "org/cvae-test")
    assert git(repo, "rev-parse", "HEAD") == shas[1]
    assert git(repo, "ls-tree", "--name-only", shas[0]).split() == [
        "README.md", "config.json", "model.safetensors"]
    card = git(repo, "show", f"{shas[0]}:README.md")
    assert "library_name: cvae" in card and "from_pretrained" in card

    for revision, expected in ((shas[0], 1), (None, 2), ("main", 2)):
        out = tmp_path / f"loaded-{revision}.safetensors"
        result = python(LOAD.format(revision=revision, out=out), hub.olah.url, tmp_path / "hf")
        assert result.returncode == 0, result.stderr
        pushed = load_file(tmp_path / f"pushed{expected}.safetensors")["samples"]
        assert (load_file(out)["samples"] == pushed).all(), revision


def test_tags_resolve_and_unknown_repos_and_revisions_fail_clearly(hub, tmp_path):
    repo = model_repo(hub.mirrors, "org/tagged")
    files = {name: (MNIST_MLP / name).read_bytes() for name in ("config.json", "model.safetensors")}
    commit_files(repo, files, "add model")
    git(repo, "tag", "v1.0")
    ok = python("import cvae; print(cvae.ConditionalVAE.from_pretrained('org/tagged', "
                "revision='v1.0').num_classes)", hub.olah.url, tmp_path / "hf")
    assert ok.returncode == 0 and ok.stdout.strip() == "10", ok.stderr
    missing = python("import cvae; cvae.ConditionalVAE.from_pretrained('org/nothing-here')",
                     hub.olah.url, tmp_path / "hf")
    assert_refused("hub-unknown-repo", last_line(missing))
    assert "'org/nothing-here'" in last_line(missing)
    bad_rev = python("import cvae; cvae.ConditionalVAE.from_pretrained('org/tagged', "
                     "revision='v9.9')", hub.olah.url, tmp_path / "hf")
    assert_refused("hub-unknown-revision", last_line(bad_rev))
    assert last_line(bad_rev) == "OSError: revision 'v9.9' does not exist in 'org/tagged'"


@pytest.mark.parametrize("files, case", [
    ({"config.json": "config", "pytorch_model.bin": b"\x80\x02pickle"}, "hub-pickle-only"),
    ({"config.json": "config", "model.safetensors": "half"}, "weights-corrupt"),
    ({"config.json": "latent_dim=5", "model.safetensors": "weights"}, "weights-shape"),
])
def test_broken_repos_are_refused_with_one_clear_error(hub, tmp_path, files, case):
    config = json.loads((MNIST_MLP / "config.json").read_text())
    weights = (MNIST_MLP / "model.safetensors").read_bytes()
    contents = {
        "config": json.dumps(config).encode(),
        "latent_dim=5": json.dumps({**config, "latent_dim": 5}).encode(),
        "weights": weights, "half": weights[: len(weights) // 2],
    }
    name = f"org/case-{case}"
    commit_files(model_repo(hub.mirrors, name),
                 {path: contents.get(what, what) for path, what in files.items()}, "files")
    result = python(f"import cvae; cvae.ConditionalVAE.from_pretrained({name!r})",
                    hub.olah.url, tmp_path / "hf")
    assert result.returncode != 0
    assert_refused(case, last_line(result))
    assert "Traceback" in result.stderr and result.stderr.count("Error:") == 1  # one error, no chain


def test_cache_is_reused_offline_and_offline_without_cache_says_so(hub, tmp_path):
    commit_files(model_repo(hub.mirrors, "org/cached"),
                 {n: (MNIST_MLP / n).read_bytes() for n in ("config.json", "model.safetensors")},
                 "model")
    own = Olah(hub.mirrors, tmp_path / "olah")  # a server of its own, to stop
    code = "import cvae; print(cvae.ConditionalVAE.from_pretrained('org/cached').latent_dim)"
    try:
        first = python(code, own.url, tmp_path / "hf")
        assert first.returncode == 0 and first.stdout.strip() == "20", first.stderr
    finally:
        own.stop()
    again = python(code, own.url, tmp_path / "hf", offline=True)
    assert again.returncode == 0 and again.stdout.strip() == "20", again.stderr
    down_but_cached = python(code, own.url, tmp_path / "hf")  # online, server gone: the cache
    assert down_but_cached.returncode == 0, down_but_cached.stderr
    cold = python(code, own.url, tmp_path / "empty-cache", offline=True)
    assert_refused("hub-offline", last_line(cold))
    assert "'org/cached'" in last_line(cold)


@pytest.mark.parametrize("case", ["hub-down", "hub-500", "hub-hang"])
def test_a_server_that_is_down_failing_or_silent(tmp_path, case):
    mode = case.removeprefix("hub-")
    server = None if mode == "down" else BrokenHub(mode)
    url = f"http://127.0.0.1:{free_port()}" if server is None else server.url
    try:
        result = python("import cvae; cvae.ConditionalVAE.from_pretrained('org/x', timeout=1)",
                        url, tmp_path / "hf")
    finally:
        if server is not None:
            server.stop()
    assert_refused(case, last_line(result))
    assert "'org/x': " in last_line(result) and url in last_line(result)


def test_cvae_push_uploads_a_trained_folder(hub, tmp_path):
    folder = tmp_path / "run"
    cvae.ConditionalVAE.from_pretrained("mnist-mlp").save_pretrained(folder)
    (folder / "notes.txt").write_text("not uploaded")
    result = python(f"import sys; from cvae.cli import main; sys.exit(main(['push', {str(folder)!r},"
                    f" 'org/from-cli', '--message', 'first']))", hub.upload.url, tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    repo = model_repo(hub.mirrors, "org/from-cli")
    assert git(repo, "log", "-1", "--format=%s") == "first"
    assert git(repo, "ls-tree", "--name-only", "HEAD").split() == [
        "README.md", "config.json", "model.safetensors"]
    assert (repo / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(b"broken")
    refused = python(f"import sys; from cvae.cli import main; sys.exit(main(['push', {str(folder)!r},"
                     f" 'org/from-cli']))", hub.upload.url, tmp_path / "hf")
    assert refused.returncode == 2 and "truncated or corrupted" in refused.stderr
    assert git(repo, "rev-list", "--count", "HEAD") == "1"  # nothing was uploaded


def python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.DOTALL)


def test_the_hub_page_code_runs(hub, tmp_path):
    push, load = python_blocks(Path(__file__).resolve().parents[1] / "docs" / "hub.md")
    result = python(push, hub.upload.url, tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    git(model_repo(hub.mirrors, "my-org/mnist-cvae"), "tag", "v1.0")
    result = python(load + "\nprint(tuple(sevens.shape))", hub.olah.url, tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("(16, 1, 28, 28)")


def dataset_repo(mirrors: Path, repo_id: str) -> Path:
    """The git repository behind a Hub dataset repo, with a dataset card as the Hub has."""
    path = mirrors / "datasets" / repo_id
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit_files(path, {"README.md": b"---\nlicense: mit\n---\n# Test images\n"}, "card")
    return path


def parquet_bytes(tmp: Path, **kwargs) -> bytes:
    from hf_fixtures import image_dataset

    image_dataset(**kwargs).to_parquet(str(tmp / "part.parquet"))
    return (tmp / "part.parquet").read_bytes()


def cli(args: list[str], endpoint: str, hf_home: Path):
    return python(f"import sys; from cvae.cli import main; sys.exit(main({args!r}))", endpoint, hf_home)


def test_a_hub_dataset_trains_and_evaluates_at_a_revision(hub, tmp_path):
    repo = dataset_repo(hub.mirrors, "org/shapes")
    first = commit_files(repo, {"data/train-00000-of-00001.parquet": parquet_bytes(
        tmp_path, n=40, names=("ant", "bee"))}, "two classes")
    commit_files(repo, {"data/train-00000-of-00001.parquet": parquet_bytes(
        tmp_path, n=40, names=("x", "y", "z"))}, "three classes")
    out = tmp_path / "run"
    trained = cli(["train", "--dataset", "hf:org/shapes", "--revision", first, "--epochs", "1",
                   "--hidden-dims", "8", "--latent-dim", "2", "--no-progress", "-o", str(out)],
                  hub.olah.url, tmp_path / "hf")
    assert trained.returncode == 0, trained.stderr
    assert "Held-out set loss" in trained.stdout and "(8 images: held-out" in trained.stdout
    assert cvae.ConditionalVAE.from_pretrained(out).class_names == ["ant", "bee"]
    evaluated = cli(["eval", str(out), "--dataset", "hf:org/shapes", "--revision", first, "-k", "2",
                     "-o", str(tmp_path / "e.json")], hub.olah.url, tmp_path / "hf")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "e.json").read_text())["test_images"] == 8
    # main has three classes now: the model's two are refused, not mixed up
    latest = cli(["eval", str(out), "--dataset", "hf:org/shapes", "-k", "2", "-o",
                  str(tmp_path / "e2.json")], hub.olah.url, tmp_path / "hf")
    assert latest.returncode == 2 and "the test data have 3 classes" in latest.stderr


def test_a_hub_dataset_with_a_test_split_is_measured_on_it(hub, tmp_path):
    repo = dataset_repo(hub.mirrors, "org/with-test")
    commit_files(repo, {"data/train-00000-of-00001.parquet": parquet_bytes(tmp_path, n=40),
                        "data/test-00000-of-00001.parquet": parquet_bytes(tmp_path, n=12, seed=1)},
                 "train and test")
    code = ("import cvae; train, test = cvae.data.load_splits('hf:org/with-test');"
            " print(len(train), len(test), test.split)")
    result = python(code, hub.olah.url, tmp_path / "hf")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["40", "12", "test"]
    missing = python("import cvae; cvae.load_dataset('hf:org/no-such-data')", hub.olah.url,
                     tmp_path / "hf")
    assert_refused("hf-missing", last_line(missing))


def test_the_custom_data_page_runs_end_to_end(hub, tmp_path):
    """Its Python (pushing to the upload server), then its commands (reading the Hub dataset
    that the page wrote, as a repo tagged v1 on the mirror)."""
    page = Path(__file__).resolve().parents[1] / "docs" / "custom-data.md"
    work = tmp_path / "work"
    work.mkdir()
    code = f"import os; os.chdir({str(work)!r})\n" + "\n".join(python_blocks(page))
    result = python(code.replace("epochs=10", "epochs=1"), hub.upload.url, tmp_path / "hf")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "['blue', 'green', 'purple', 'red', 'yellow'] 40 10" in result.stdout
    assert cvae.ConditionalVAE.from_pretrained(work / "shapes-model").class_names[2] == "purple"
    assert "POST /api/models/my-org/pets-cvae/commit/main" in " ".join(map(" ".join, hub.upload.requests))
    repo = dataset_repo(hub.mirrors, "my-org/pets")
    commit_files(repo, {"data/train-00000-of-00001.parquet": (work / "pets.parquet").read_bytes()}, "pets")
    git(repo, "tag", "v1")
    commands = re.findall(r"```bash\n(.*?)```", page.read_text(), re.DOTALL)
    env = {**os.environ, "HF_ENDPOINT": hub.olah.url, "HF_HOME": str(tmp_path / "hf")}
    env.pop("HF_HUB_OFFLINE", None)
    for line in "".join(commands).replace("\\\n", " ").splitlines():  # as a shell reads them
        args = shlex.split(line.replace("--epochs 10", "--epochs 1"))[1:]
        done = subprocess.run([sys.executable, "-m", "cvae.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{line}: {done.stderr[-2000:]}"
    assert (work / "samples-purple.png").is_file()
    assert json.loads((work / "pets-eval.json").read_text())["split"].startswith("held-out")
