"""Charts for the weekly report, rendered offline to PNG with matplotlib (Agg, no display, no fonts fetched).
Labels are numbers and dates only, so the same image serves the English and the Chinese report."""

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates
import matplotlib.pyplot as plt


def line_chart(days: list[datetime], series: dict[str, list[float]], colors: dict[str, str] | None = None,
               width: float = 6.4, height: float = 2.4) -> bytes:
    figure, axes = plt.subplots(figsize=(width, height), dpi=100)
    try:
        for name, values in series.items():
            # matplotlib takes datetimes through its units registry; its stubs only know numbers and arrays.
            axes.plot(days, values, label=name, color=(colors or {}).get(name), linewidth=1.6)  # type: ignore[arg-type]
        axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
        axes.grid(alpha=0.3)
        axes.spines[["top", "right"]].set_visible(False)
        if len(series) > 1:
            axes.legend(loc="upper left", fontsize=8, frameon=False)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)
