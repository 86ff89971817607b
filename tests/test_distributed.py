"""DistributedDataParallel: gloo processes on the CPU started by torchrun (two on one
"machine", and two "machines" of two meeting by c10d rendezvous on the loopback
interface), against one process."""

import json
import os
import socket
import subprocess
import sys
from contextlib import ExitStack

import pytest
import torch
from processes import started
from refusals import assert_refused
from safetensors.torch import load_file

import cvae

pytestmark = pytest.mark.slow  # torchrun and DDP processes

SCRIPT = """
import json, sys, torch, cvae
from pathlib import Path
from safetensors.torch import save_file
out = Path(sys.argv[1])

def say(line):  # one write of the whole line: the processes share the pipe
    sys.stdout.write(line + "\\n")
    sys.stdout.flush()

data = cvae.load_dataset("mnist", train=True)
data = (data.images[:1001], data.labels[:1001])  # the last batch of 41 splits 21 + 20
for mode in ("memory", "stream"):
    torch.manual_seed(0)
    model = cvae.ConditionalVAE()
    # float32: in bfloat16 each process rounds its share of a batch on its own, and the
    # runs part by more than the tolerance below within two epochs
    trainer = cvae.Trainer(model, data, epochs=2, batch_size=64, seed=1, progress=False,
                           in_memory=mode == "memory", checkpoint_dir=out / mode / "checkpoints",
                           mixed_precision=False)
    history = trainer.train()
    say(f"{mode}: rank {trainer.rank} of {trainer.world_size}")
    if trainer.is_main_process:
        save_file(model.state_dict(), str(out / mode / "model.safetensors"))
        (out / mode / "history.json").write_text(json.dumps(history))
try:
    cvae.Trainer(cvae.ConditionalVAE(), data, batch_size=1)
except ValueError as err:
    say(f"refused: ValueError: {err}")
"""


def run(args, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    script = tmp / "train.py"
    script.write_text(SCRIPT)
    single = run([str(script), str(tmp / "single")], tmp)
    ddp = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(script), str(tmp / "ddp")], tmp)
    return tmp, single, ddp


@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_two_processes_match_one_with_the_same_global_batch(runs, mode):
    tmp, single, ddp = runs
    assert f"{mode}: rank 0 of 1" in single
    assert f"{mode}: rank 0 of 2" in ddp and f"{mode}: rank 1 of 2" in ddp
    one = load_file(tmp / "single" / mode / "model.safetensors")
    two = load_file(tmp / "ddp" / mode / "model.safetensors")
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5, msg=name)
    h1 = json.loads((tmp / "single" / mode / "history.json").read_text())
    h2 = json.loads((tmp / "ddp" / mode / "history.json").read_text())
    for a, b in zip(h1, h2, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)


def test_two_machines_of_two_processes_match_one(runs, tmp_path):
    """Two torchrun "machines" on the loopback interface, meeting by c10d rendezvous."""
    tmp, single, _ = runs
    with socket.socket() as probe:  # a free port for the rendezvous store
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with ExitStack() as stack:
        nodes = [stack.enter_context(started(
            [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "2",
             "--rdzv_backend", "c10d", "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "cvae-test",
             "--rdzv_conf", f"is_host={int(rank == 0)}", "--max_restarts", "0",
             str(tmp / "train.py"), str(tmp_path / "nodes")],
            stderr=subprocess.STDOUT, env=env, cwd=tmp_path))
            for rank in (0, 1)]
        outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outputs)
    ranks = {line for out in outputs for line in out.splitlines() if " of 4" in line}
    assert ranks == {f"{mode}: rank {r} of 4" for mode in ("memory", "stream") for r in range(4)}
    for mode in ("memory", "stream"):
        one = load_file(tmp / "single" / mode / "model.safetensors")
        four = load_file(tmp_path / "nodes" / mode / "model.safetensors")
        for name in one:
            torch.testing.assert_close(four[name], one[name], rtol=1e-4, atol=1e-5, msg=name)


def test_a_batch_smaller_than_the_processes_is_refused(runs):
    _, single, ddp = runs
    assert "refused" not in single
    refused = [line for line in ddp.splitlines() if line.startswith("refused: ")]
    assert len(refused) == 2  # in both processes
    assert_refused("ddp-batch", refused[0][len("refused: "):])


def test_only_rank_0_logs_and_writes_checkpoints(runs):
    tmp, _, ddp = runs
    assert ddp.count("====> Epoch: 1 ") == 2  # once per mode, not once per process
    for mode in ("memory", "stream"):
        written = sorted(p.name for p in (tmp / "ddp" / mode / "checkpoints").iterdir())
        assert written == ["epoch-0001", "epoch-0002"]


def test_cvae_train_runs_under_torchrun(tmp_path):
    out = run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "cvae.cli", "train", "--limit", "1001", "--epochs", "1", "--batch-size", "64",
               "--no-progress", "-o", str(tmp_path / "model")], tmp_path)
    assert out.count("saved the model") == 1 and out.count("====> Epoch: 1 ") == 1
    model = cvae.ConditionalVAE.from_pretrained(tmp_path / "model")
    assert model.sample(3, 2).shape == (2, 1, 28, 28)
