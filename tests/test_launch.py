"""Every launcher with DRY_RUN=1: the exact commands it would run (jax.distributed settings, the train command with
config and overrides), the GKE JobSet manifests as rendered, and launch/install.sh (the Dockerfile's RUN step) in a
fresh venv (slow: it pip-installs every dependency)."""

from __future__ import annotations

import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from train_helpers import REPO

OVERRIDE = "--config.init.nets=('G', \"D\")"  # quotes, comma and space must reach the trainer intact


def _launch(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "DRY_RUN": "1", **env}
    return subprocess.run(["bash", str(REPO / script), *args], env=full, cwd=REPO, capture_output=True, text=True)


def _commands(out: str) -> list[list[str]]:
    """The printed `+ CMD` lines, each split as the shell would."""
    return [shlex.split(line[2:]) for line in out.splitlines() if line.startswith("+ ")]


def _env_and_train(cmd: list[str]) -> tuple[dict[str, str], list[str]]:
    """(env VAR=VALUE settings, argv after `python -m mat_jax.train`) of one command."""
    i = cmd.index("env")
    env, j = {}, i + 1
    while "=" in cmd[j] and not cmd[j].startswith("-"):
        k, v = cmd[j].split("=", 1)
        env[k] = v
        j += 1
    m = cmd.index("mat_jax.train")
    assert cmd[m - 1] == "-m"
    return env, cmd[m + 1 :]


def test_local_one_process():
    res = _launch("launch/local.sh", "configs/tiny.py", "runs/x", OVERRIDE, JAX_COMPILATION_CACHE_DIR="/c")
    assert res.returncode == 0, res.stderr
    (cmd,) = _commands(res.stdout)
    env, argv = _env_and_train(cmd)
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/c" and "glibc.malloc.hugetlb=1" in env["GLIBC_TUNABLES"]
    assert argv == ["--config", "configs/tiny.py", "--workdir", "runs/x", OVERRIDE]


def test_local_n_processes_share_one_coordinator():
    res = _launch(
        "launch/local.sh", "configs/tiny.py", "runs/x", OVERRIDE, NUM_PROCESSES="3", CPU_DEVICES="2", PORT="4321"
    )
    assert res.returncode == 0, res.stderr
    cmds = _commands(res.stdout)
    assert len(cmds) == 3
    for i, cmd in enumerate(cmds):
        _, argv = _env_and_train(cmd)
        assert argv[:4] == ["--config", "configs/tiny.py", "--workdir", "runs/x"] and argv[-1] == OVERRIDE
        assert "--coordinator_address=127.0.0.1:4321" in argv and "--num_processes=3" in argv
        assert f"--process_id={i}" in argv and "--num_cpu_devices=2" in argv


def test_slurm_uses_jax_slurm_detection():
    res = _launch("launch/slurm.sbatch", "configs/places512.py", "/shared/run", OVERRIDE)
    assert res.returncode == 0, res.stderr
    (cmd,) = _commands(res.stdout)
    assert cmd[:2] == ["srun", "--kill-on-bad-exit=1"]
    env, argv = _env_and_train(cmd)
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/shared/run/jax_cache"  # shared storage, next to the checkpoints
    assert argv == ["--config", "configs/places512.py", "--workdir", "/shared/run", "--distributed", OVERRIDE]
    header = (REPO / "launch/slurm.sbatch").read_text()
    assert "#SBATCH --signal=TERM@120" in header and "#SBATCH --ntasks-per-node=1" in header


def test_tpu_pod_runs_the_same_command_on_every_worker():
    res = _launch("launch/tpu_pod.sh", "configs/places512.py", "/mnt/runs/p", OVERRIDE, TPU_NAME="v4-32", ZONE="z1")
    assert res.returncode == 0, res.stderr
    (cmd,) = _commands(res.stdout)
    assert cmd[:6] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "v4-32"] and "--worker=all" in cmd
    remote = shlex.split(cmd[cmd.index("--command") + 1])  # what each worker's shell runs
    assert remote[:3] == ["cd", "~/mat-jax", "&&"]
    env, argv = _env_and_train(remote)
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/mnt/runs/p/jax_cache"
    assert argv == ["--config", "configs/places512.py", "--workdir", "/mnt/runs/p", "--distributed", OVERRIDE]
    missing = _launch("launch/tpu_pod.sh", "c", "w", ZONE="z1", TPU_NAME="")
    assert missing.returncode != 0 and "TPU_NAME" in missing.stderr


def _jobset(kind: str, **env: str):
    res = _launch("launch/gke/submit.sh", kind, "/opt/mat-jax/configs/places512.py", "/gcs/runs/p", OVERRIDE, **env)
    assert res.returncode == 0, res.stderr
    manifest, _, tail = res.stdout.rpartition("\n+ ")
    assert shlex.split(tail) == ["kubectl", "apply", "-f", "-"]
    return yaml.safe_load(manifest)


@pytest.mark.parametrize("kind", ["gpu", "tpu"])
def test_gke_jobset_wires_jax_distributed(kind):
    js = _jobset(kind, IMAGE="reg/mat-jax:x", BUCKET="bkt", JOB_NAME="run1", NUM_NODES="4")
    assert js["kind"] == "JobSet" and js["metadata"]["name"] == "run1"
    assert js["spec"]["network"]["enableDNSHostnames"] is True
    (rjob,) = js["spec"]["replicatedJobs"]
    job = rjob["template"]["spec"]
    assert job["parallelism"] == job["completions"] == 4 and job["completionMode"] == "Indexed"
    pod = job["template"]["spec"]
    (c,) = pod["containers"]
    assert c["image"] == "reg/mat-jax:x" and c["command"] == ["python", "-m", "mat_jax.train"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    # pod 0 of the job, through the JobSet headless service: <jobset>-<replicatedJob>-<job index>-<pod index>.<jobset>
    assert env["COORDINATOR_ADDRESS"] == f"run1-{rjob['name']}-0-0.run1:8476"
    assert env["NUM_PROCESSES"] == "4"
    assert env["PROCESS_ID"]["fieldRef"]["fieldPath"] == (
        "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    )
    assert env["JAX_COMPILATION_CACHE_DIR"] == "/gcs/runs/p/jax_cache"
    assert c["args"] == [
        "--config",
        "/opt/mat-jax/configs/places512.py",
        "--workdir",
        "/gcs/runs/p",
        "--coordinator_address=$(COORDINATOR_ADDRESS)",  # expanded by Kubernetes from the env above
        "--num_processes=$(NUM_PROCESSES)",
        "--process_id=$(PROCESS_ID)",
        OVERRIDE,
    ]
    limits = c["resources"]["limits"]
    assert limits == ({"nvidia.com/gpu": 8} if kind == "gpu" else {"google.com/tpu": 4})
    (gcs,) = [v for v in pod["volumes"] if v["name"] == "gcs"]
    assert gcs["csi"]["volumeAttributes"]["bucketName"] == "bkt"
    assert {"name": "gcs", "mountPath": "/gcs"} in c["volumeMounts"]


def test_gke_submit_errors():
    res = _launch("launch/gke/submit.sh", "gpus", "c", "w", IMAGE="i", BUCKET="b")
    assert res.returncode == 2 and "must be gpu or tpu, got 'gpus'" in res.stderr
    res = _launch("launch/gke/submit.sh", "gpu", "c", "w", IMAGE="", BUCKET="b")
    assert res.returncode != 0 and "IMAGE" in res.stderr


@pytest.mark.parametrize("platform,extra", [("cpu", None), ("cuda", "cuda12"), ("tpu", "tpu")])
def test_install_script_dry_run(platform, extra):
    res = _launch("launch/install.sh", "/src", PLATFORM=platform, PYTHON=sys.executable)
    assert res.returncode == 0, res.stderr
    cmds = _commands(res.stdout)
    assert cmds[0] == [sys.executable, "-m", "pip", "install", "--no-cache-dir", "/src"]
    if extra is None:
        assert len(cmds) == 2
    else:  # the plugin at exactly the installed (pyproject-pinned) jax version, so pip cannot upgrade jax
        assert cmds[1][-1] == f"jax[{extra}]=={importlib.metadata.version('jax')}"
    assert cmds[-1][:2] == [sys.executable, "-c"] and "import jax, mat_jax" in cmds[-1][2]
    bad = _launch("launch/install.sh", PLATFORM="rocm")
    assert bad.returncode == 2 and "PLATFORM=rocm is not one of cpu, cuda, tpu" in bad.stderr


def _dockerfile_copies() -> list[str]:
    text = (REPO / "Dockerfile").read_text()
    assert re.search(r"^RUN PLATFORM=\$\{PLATFORM\} bash launch/install.sh ", text, re.M)
    return [p for line in re.findall(r"^COPY (.+)$", text, re.M) for p in line.split()[:-1]]


@pytest.mark.slow
def test_install_script_in_a_fresh_venv(tmp_path):
    """What the Dockerfile does, with PLATFORM=cpu: copy what it COPYs, run launch/install.sh in a new venv (about
    3-5 minutes on 2 cores: pip resolves and installs every dependency), then import and run the CLI."""
    src = tmp_path / "src"
    src.mkdir()
    for rel in _dockerfile_copies():
        if (REPO / rel).is_dir():
            shutil.copytree(REPO / rel, src / rel, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / rel, src / rel)
    venv = tmp_path / "venv"
    subprocess.run([f"python{sys.version_info.major}.{sys.version_info.minor}", "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DRY_RUN", "VIRTUAL_ENV")}
    res = subprocess.run(
        ["bash", str(src / "launch/install.sh"), str(src)],
        env={**env, "PLATFORM": "cpu", "PYTHON": py},
        cwd=tmp_path,  # not the repository: the import must come from the venv
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"mat-jax {venv}" in res.stdout and " cpu" in res.stdout.splitlines()[-1]
    out = subprocess.run(
        [str(venv / "bin" / "mat-jax"), "--help"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert out.returncode == 0 and "train" in out.stdout, out.stderr
    out = subprocess.run(
        [py, "-c", "import jax, mat_jax.train.loop; print(jax.__version__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip() == importlib.metadata.version("jax"), out.stderr


def test_readme_timeout_table_matches_the_train_flags():
    """launch/README.md's table of jax.distributed timeouts states the defaults of `mat-jax train`'s flags."""
    from mat_jax.commands import train

    rows = re.findall(r"^\| `--(\w+)` \| (\d+) \|", (REPO / "launch" / "README.md").read_text(), re.M)
    fv = train.flag_values()
    assert {name for name, _ in rows} == {"heartbeat_timeout_s", "initialization_timeout_s", "shutdown_timeout_s"}
    for name, default in rows:
        assert fv[name].default == int(default), name
