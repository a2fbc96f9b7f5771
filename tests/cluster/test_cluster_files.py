"""The deployable cluster files: Ray's own schema for the launcher config, and the KubeRay
RayJob's script and flags through raykd's real parser. Nothing here needs a cloud or Kubernetes."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"


def _load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _dockerfile() -> dict[str, str]:
    """FROM and WORKDIR of cluster/Dockerfile."""
    lines = [line.split(None, 1) for line in (CLUSTER / "Dockerfile").read_text().splitlines() if line and not line.startswith("#")]
    return {key: value.strip() for key, value in lines if key in ("FROM", "WORKDIR")}


def test_the_launcher_config_passes_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = _load("aws-gpu.yaml")
    # What `ray up` does before it talks to AWS: fill in the provider's defaults, then validate.
    validate_config(prepare_config(config))
    head, workers = config["available_node_types"][config["head_node_type"]], config["available_node_types"]["gpu_worker"]
    assert config["provider"]["type"] == "aws" and head["resources"] == {"CPU": 0}
    assert workers["min_workers"] < workers["max_workers"] <= config["max_workers"]  # the autoscaler has room
    assert workers["node_config"]["InstanceType"].startswith(("g5.", "g6.", "p4", "p5"))  # GPU instances
    assert {".venv", "runs"} <= set(config["rsync_exclude"])


def test_the_launcher_runs_ray_from_a_venv_and_keeps_the_dashboard_local():
    config = _load("aws-gpu.yaml")
    assert any("venv" in c for c in config["setup_commands"]) and any("pip install" in c and "-e ~/raykd" in c for c in config["setup_commands"])
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    # `ray` and a job's `python` come from the venv, not the image's system Python.
    assert all("PATH=$HOME/raykd-venv/bin:$PATH" in c for c in starts)
    head_start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in head_start and "0.0.0.0" not in (CLUSTER / "aws-gpu.yaml").read_text()


def test_the_raycluster_has_an_idle_head_and_autoscaled_gpu_workers():
    cluster = _load("kuberay-raycluster.yaml")
    spec = cluster["spec"]
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert spec["enableInTreeAutoscaling"] is True
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0" and head["serviceType"] == "ClusterIP"
    (group,) = spec["workerGroupSpecs"]
    assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"] and group["minReplicas"] < group["maxReplicas"]
    (worker,) = group["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_no_file_exposes_the_dashboard_or_holds_a_wandb_key():
    texts = {path.name: path.read_text() for path in CLUSTER.iterdir()}
    for name, text in texts.items():
        assert "LoadBalancer" not in text and "NodePort" not in text, name
        assert not re.search(r"WANDB_API_KEY\s*[:=]\s*['\"]?\w", text), name
    (head,) = _load("kuberay-raycluster.yaml")["spec"]["headGroupSpec"]["template"]["spec"]["containers"]
    (key,) = [env for env in head["env"] if env["name"] == "WANDB_API_KEY"]
    assert key["valueFrom"]["secretKeyRef"]["name"] == "wandb"


def test_every_cluster_file_uses_the_image_the_dockerfile_builds():
    import ray

    docker = _dockerfile()
    assert docker["FROM"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert _load("kuberay-raycluster.yaml")["spec"]["rayVersion"] == ray.__version__
    images = {c["image"] for group in [_load("kuberay-raycluster.yaml")["spec"]["headGroupSpec"], *_load("kuberay-raycluster.yaml")["spec"]["workerGroupSpecs"]]
              for c in group["template"]["spec"]["containers"]}  # fmt: skip
    (image,) = images
    assert f"docker build -f cluster/Dockerfile -t {image} ." in (ROOT / "README.md").read_text()


def test_the_rayjob_runs_a_script_of_this_repository_with_options_raykd_accepts():
    from ray.runtime_env import RuntimeEnv

    from raykd.cli import COMMANDS, build_parser
    from raykd.config import config_from_args

    job = _load("kuberay-rayjob.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert job["spec"]["clusterSelector"]["ray.io/cluster"] == _load("kuberay-raycluster.yaml")["metadata"]["name"]
    python, script, *options = shlex.split(job["spec"]["entrypoint"])
    assert python == "python"
    # The image holds the repository at the Dockerfile's WORKDIR.
    local = ROOT / Path(script).relative_to(_dockerfile()["WORKDIR"])
    assert local.is_file(), script
    assert local.name == "ensemble_to_student.py" and 'main(["run"' in local.read_text()
    # The real parser and config checks: an unknown flag or a bad value fails here.
    cfg = config_from_args(build_parser().parse_args(["run", *options]), COMMANDS["run"].config)
    assert cfg.student.use_gpu and cfg.soft_targets.num_gpus > 0 and cfg.output.startswith("/shared/")
    RuntimeEnv(**yaml.safe_load(job["spec"]["runtimeEnvYAML"]))  # Ray refuses unknown fields


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "kuberay-raycluster.yaml", "kuberay-rayjob.yaml"])
def test_each_file_names_the_command_that_deploys_it(name):
    text = (CLUSTER / name).read_text()
    assert (f"ray up cluster/{name}" in text) or (f"kubectl apply -f cluster/{name}" in text or f"-f cluster/{name}" in text)
