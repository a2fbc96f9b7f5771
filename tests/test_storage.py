"""raykd.storage: paths and URIs through pyarrow.fs, whole-or-nothing writes, and URIs refused at
config time, before any work, against a real S3-compatible server (moto) on 127.0.0.1."""

from __future__ import annotations

import pytest

from raykd import storage
from raykd.cli import main
from raykd.config import ConfigError, load_config


def test_a_uri_is_never_a_local_path_and_a_path_never_a_uri(s3_server, tmp_path):
    fs, path = storage.resolve("s3://bucket/run/soft_targets")
    assert (fs.type_name, path) == ("s3", "bucket/run/soft_targets")
    fs, path = storage.resolve(tmp_path / "run")
    assert (fs.type_name, path) == ("local", str(tmp_path / "run"))
    assert storage.join("s3://bucket/run/", "checkpoints", "a") == "s3://bucket/run/checkpoints/a"
    assert storage.location_in("s3://bucket/run", "bucket/run/checkpoints/c_1") == "s3://bucket/run/checkpoints/c_1"
    assert storage.staging_dir("s3://bucket/../run").parts[-3:] == ("s3", "bucket", "run")  # stays inside


def test_a_local_write_is_renamed_into_place_whole(tmp_path):
    fs, root = storage.resolve(tmp_path)
    storage.write_whole(fs, f"{root}/a.bin", b"x" * 1000)
    assert (tmp_path / "a.bin").read_bytes() == b"x" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no temp file left behind


def test_objects_round_trip_and_are_listed_by_name(s3_server):
    s3_server["bucket"]("unit")
    fs, path = storage.resolve("s3://unit/run/a.txt")
    storage.write_whole(fs, path, b"whole")
    assert storage.read_bytes("s3://unit/run/a.txt") == b"whole"
    assert [f.base_name for f in storage.list_files("s3://unit/run")] == ["a.txt"]
    assert storage.glob("s3://unit", "run/*.txt") == ["s3://unit/run/a.txt"]
    with pytest.raises(FileNotFoundError):
        storage.read_bytes("s3://unit/run/missing")


@pytest.mark.parametrize(
    ("output", "match"),
    [
        ("ftp://host/run", r"output \(--output\): 'ftp://host/run' cannot be opened by pyarrow.fs .*use a local path or a URI pyarrow supports"),
        ("s3://no-such-bucket/run", r"output \(--output\): 's3://no-such-bucket/run' names bucket 'no-such-bucket', which does not exist .*create it first"),
    ],
)
def test_an_output_that_cannot_hold_a_run_is_refused_by_the_config(s3_server, output, match):
    with pytest.raises(ConfigError, match=match):
        load_config(["--output", output])


def test_the_command_refuses_an_unsupported_uri_in_one_line_before_any_work(s3_server, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "memory://run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("raykd run: error: output (--output): 'memory://run' cannot be opened") and "\n" not in err
    assert not list(tmp_path.iterdir())  # no folder named `memory:`, nothing staged


@pytest.mark.ray
def test_inside_ray_job_submit_the_jobs_storage_variables_reach_the_workers(ray_session, s3_server, tmp_path):
    """`open_run` hands the driver's AWS_* variables to its job's workers (the S3 pipeline test
    covers a driver that joins a cluster). Inside `ray job submit`, simulated by the job config Ray
    gives the driver, the job's runtime_env carries them, and Ray would refuse the driver's copy."""
    import json
    import os
    import subprocess
    import sys

    script = tmp_path / "driver.py"
    script.write_text(
        "import os, ray\n"
        "from raykd import storage\n"
        "from raykd.runtime import init_ray\n"
        "init_ray(runtime_env={'env_vars': storage.worker_env()})\n"
        "print('worker sees', ray.get(ray.remote(num_cpus=0)(lambda: os.environ.get('AWS_ENDPOINT_URL')).remote()))\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_session.get_runtime_context().gcs_address}
    env["RAY_JOB_CONFIG_JSON_ENV_VAR"] = json.dumps({"runtime_env": {"env_vars": {"AWS_ENDPOINT_URL": env["AWS_ENDPOINT_URL"]}}})
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"worker sees {env['AWS_ENDPOINT_URL']}" in done.stdout
