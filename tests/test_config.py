"""Configuration errors name the field, the flag and the value."""

from __future__ import annotations

import pytest

from raykd.config import ConfigError, PipelineConfig, parse_args


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--alpha", "1.5"], r"student\.alpha \(--alpha\) must be in \[0, 1\], got 1\.5"),
        (["--alpha", "-0.1"], r"student\.alpha \(--alpha\) must be in \[0, 1\]"),
        (["--temperature", "0"], r"student\.temperature \(--temperature\) must be > 0, got 0\.0"),
        (["--temperature", "-2"], r"student\.temperature .* must be > 0"),
        (["--num-workers", "0"], r"student\.num_workers \(--num-workers\) must be >= 1, got 0"),
        (["--data", "/no/such/file.parquet"], r"data\.path \(--data\) does not exist: '/no/such/file\.parquet'"),
        (["--strategy", "Telepathy"], r"student\.strategy \(--strategy\) must be one of .*'ResponseBased'.*got 'Telepathy'"),
        (["--k", "0"], r"soft_targets\.k \(--k\) must be >= 1"),
        (["--decode", "spread"], r"soft_targets\.decode \(--decode\) must be 'renormalize' or 'residual', got 'spread'"),
    ],
)
def test_bad_flags_exit_with_a_message_naming_the_field(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert pytest.importorskip("re").search(message, err), err


def test_yaml_unknown_keys_are_rejected_with_their_dotted_path():
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['student\.temprature'\]"):
        PipelineConfig.from_dict({"student": {"temprature": 2.0}})
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['learning_rate'\]"):
        PipelineConfig.from_dict({"learning_rate": 0.1})


def test_yaml_file_and_flags_merge_with_flags_winning(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("student:\n  temperature: 2.0\n  alpha: 0.3\nsoft_targets:\n  k: 5\n")
    cfg = parse_args(["--config", str(path), "--alpha", "0.6"])
    assert (cfg.student.temperature, cfg.student.alpha, cfg.soft_targets.k) == (2.0, 0.6, 5)


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("student: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(Exception, match="could not determine a constructor"):
        parse_args(["--config", str(path)])
