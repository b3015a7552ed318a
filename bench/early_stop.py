"""Stopping a budget run when validation stalls, replayed on recorded runs.

    .venv/bin/python bench/early_stop.py RUN_DIR... [--patience 0.25 0.3 0.4] [--after 0.5]

A run stops at the first validation past ``--after`` of its steps that comes ``patience`` × its
steps or more after the last strict improvement of the validation score. Replaying a recorded
run's ``metrics.csv`` is exact, because the run up to that validation is the same run:
the learning-rate schedule depends only on the planned steps. The table gives the training
seconds saved and the best validation score kept against the whole run's. Where the best step
is the same, the model kept is the same, so its test figures are those of the run's row in
``results/training.md``.

Results: ``bench/results/early-stop.md`` (the notes under its table are kept unless ``--note``
gives new ones).
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "early-stop.md"


@dataclass(frozen=True)
class Validation:
    step: int
    seconds: float
    score: float


def read_history(run_dir: Path) -> list[Validation]:
    with (run_dir / "metrics.csv").open(newline="") as fh:
        return [
            Validation(int(r["step"]), float(r["elapsed_s"]), float(r["val_score"]))
            for r in csv.DictReader(fh)
        ]


def kept(history: list[Validation]) -> Validation:
    """The model ``training.loop`` keeps from these validations: the last best, ties included."""
    return max(reversed(history), key=lambda v: v.score)


def stop(history: list[Validation], patience: float, after: float) -> int | None:
    """How many validations the rule lets run (``None``: all of them)."""
    total = history[-1].step
    improved = history[0]  # a tie is not progress
    for i, v in enumerate(history):
        if v.score > improved.score:
            improved = v
        late = after * total <= v.step < total
        if late and v.step - improved.step >= patience * total:
            return i + 1
    return None


def kept_notes() -> str:
    """What follows the table in the results file now."""
    if not RESULTS.is_file():
        return ""
    text = RESULTS.read_text()
    table_end = text.rfind("\n|")
    return text[text.index("\n\n", table_end) :] if "\n\n" in text[table_end:] else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="model folders with metrics.csv")
    ap.add_argument("--patience", type=float, nargs="+", default=[0.25, 0.3, 0.4])
    ap.add_argument("--after", type=float, default=0.5)
    ap.add_argument("--note", help="where the runs came from, the verdict (under the table)")
    args = ap.parse_args()

    lines = [
        "# Stopping when validation stalls (bench/early_stop.py)",
        "",
        f"A run stops at the first validation past {args.after:.0%} of its steps that comes "
        "`patience` × its steps after the last strict improvement; replayed on recorded runs.",
        "",
        "| run | validations | steps | best validation (step) | "
        + " | ".join(f"patience {p:g}: stop · time saved · kept" for p in args.patience)
        + " |",
        "|---|---|---|---|" + "---|" * len(args.patience),
    ]
    for run_dir in args.runs:
        history = read_history(run_dir)
        whole = kept(history)
        cells = []
        for p in args.patience:
            n = stop(history, p, args.after)
            if n is None:
                cells.append("runs to the end")
                continue
            at, model = history[n - 1], kept(history[:n])
            saved = 1 - at.seconds / history[-1].seconds
            same = "same model" if model.step == whole.step else "an earlier model"
            cells.append(f"{at.step} · {saved:.0%} · {model.score:.4f} ({same})")
        lines.append(
            f"| {run_dir.name} | {len(history)} | {history[-1].step} | "
            f"{whole.score:.4f} ({whole.step}) | " + " | ".join(cells) + " |"
        )
    note = args.note if args.note is not None else kept_notes()
    if note:
        lines += ["", note.strip()]
    text = "\n".join(lines) + "\n"
    print(text)
    RESULTS.write_text(text)


if __name__ == "__main__":
    main()
