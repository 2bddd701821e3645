"""Plot full sync time against the raw baseline (benchmarks/raw_baseline.py) by district size."""

from __future__ import annotations

import pathlib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)


def plot_times(points: list[dict], out_png: pathlib.Path) -> None:
    """Log–log lines of `sync_seconds` and `baseline_seconds` against `students`, saved as a PNG.

    Each sync point is annotated with how many times slower than the baseline it is.
    """
    points = sorted(points, key=lambda p: p["students"])
    students = [p["students"] for p in points]
    sync = [p["sync_seconds"] for p in points]
    baseline = [p["baseline_seconds"] for p in points]

    fig, ax = plt.subplots(figsize=(8, 5))
    ax.plot(students, sync, marker="o", label="roster-pipeline sync")
    ax.plot(students, baseline, marker="s", label="raw baseline")
    for x, y, base in zip(students, sync, baseline):
        ax.annotate(f"{y / base:.1f}×", (x, y), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=9)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(x=0.08, y=0.15)  # room for the labels above the top points
    ax.set_title("Full sync time vs district size")
    ax.set_xlabel("students in the district")
    ax.set_ylabel("seconds (wall)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=120)
    plt.close(fig)
