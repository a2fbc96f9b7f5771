"""The `raykd` command: one subcommand per run, each over the same typed config and stages.

    raykd run [--config run.yaml] [--set student.lr=1e-3] [flags]
    raykd soft-targets | pseudo-label | born-again | transformer-distill ...

Config and data errors print one line naming the field or file (exit 2); `--debug` shows the
traceback. The pipelines in `pipelines/` call `main` with their subcommand.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable

from raykd.config import (
    BornAgainConfig,
    ConfigError,
    PseudoLabelConfig,
    RunConfig,
    TransformerDistillConfig,
    add_config_arguments,
    config_from_args,
)

from raykd.search.space import SearchConfig

__all__ = ["COMMANDS", "main"]


def _run(cfg: RunConfig) -> Any:
    from raykd.stages import run_distill

    return run_distill(cfg)


def _soft_targets(cfg: RunConfig) -> Any:
    from raykd.stages import run_soft_targets, say

    run, _, teacher, soft = run_soft_targets(cfg)
    say(f"soft targets of {teacher.label}: {soft.describe()}")
    return soft.describe()


def _pseudo_label(cfg: RunConfig) -> Any:
    from raykd.stages.pseudo_label import run_pseudo_label

    return run_pseudo_label(cfg)  # type: ignore[arg-type]


def _born_again(cfg: RunConfig) -> Any:
    from raykd.stages.born_again import run_born_again

    return run_born_again(cfg)  # type: ignore[arg-type]


def _transformer_distill(cfg: RunConfig) -> Any:
    from raykd.stages.transformer_distill import run_transformer_distill

    return run_transformer_distill(cfg)  # type: ignore[arg-type]


def _tune(cfg: RunConfig) -> Any:
    from raykd.stages.search import run_search

    return run_search(cfg)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Command:
    config: type[RunConfig]
    run: Callable[[RunConfig], Any]
    help: str


COMMANDS: dict[str, Command] = {
    "run": Command(RunConfig, _run, "teacher → soft targets → KD student (+ labels-only baseline) → report"),
    "soft-targets": Command(RunConfig, _soft_targets, "teacher → soft targets only (resumable; reused by every later student)"),
    "pseudo-label": Command(PseudoLabelConfig, _pseudo_label, "teachers on scarce labels pseudo-label the rest; students with and without them"),
    "born-again": Command(BornAgainConfig, _born_again, "Born-Again Networks: generations of one student, each the teacher of the next"),
    "transformer-distill": Command(
        TransformerDistillConfig, _transformer_distill, "a Transformer teacher's sentence embeddings → a smaller transformer, on packaged text"
    ),
    "tune": Command(SearchConfig, _tune, "Ray Tune search over strategies × temperature/alpha schedules, the teacher run once"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raykd", description="Cluster-scale knowledge distillation on Ray.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        add_config_arguments(sub.add_parser(name, help=command.help, description=command.help), command.config)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = COMMANDS[args.command]
    try:
        cfg = config_from_args(args, command.config)
        command.run(cfg)
    except Exception as err:  # noqa: BLE001 - one clear line for people, the traceback on request
        from raykd.stages.run import RunError

        if args.debug or not isinstance(err, (ConfigError, RunError, FileNotFoundError, ValueError)):
            raise
        print(f"raykd {args.command}: error: {err}", file=sys.stderr)
        print("(add --debug for the traceback)" if not isinstance(err, ConfigError) else "", file=sys.stderr, end="")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
