"""Tick locators and formatters of multilc figures.

Private helpers of `multilc.plotting`, which imports this module only when
it draws (it imports matplotlib at import time).  They live at module level,
not inside functions, so that figures using them can be pickled.

Every formatter here writes plain decimal numbers: no offset text ("+5.8e4"),
no exponent ("6e-01"), no "1e-15" floating above the axis.  A power of ten
that the numbers need goes into the axis label instead (`scale_exponent`).
"""
from __future__ import annotations

import numpy as np
from matplotlib import rcParams, ticker
from matplotlib.dates import num2date

__all__ = ["PlainFormatter", "LogTicks", "CalendarFormatter", "scale_exponent"]

_MINUS = "\N{MINUS SIGN}"


def scale_exponent(values):
    """Power of ten to take out of tick labels and put into the axis label.

    0 when the largest finite absolute value lies in [0.01, 10000), which
    plain decimals show well (0.05 mJy, 2500 e-/s); otherwise the exponent of
    that value, so that ticks read 0.2 ... 1.6 with "10^-15" in the label.

    Parameters
    ----------
    values : array-like
        The numbers drawn on the axis.

    Returns
    -------
    int
    """
    v = np.abs(np.asarray(values, dtype=float))
    v = v[np.isfinite(v) & (v > 0)]
    if not v.size:
        return 0
    exponent = int(np.floor(np.log10(v.max())))
    return 0 if -2 <= exponent <= 3 else exponent


def _finish(text):
    if float(text) == 0:
        text = text.lstrip("-")  # "-0.0" from rounding a tiny negative tick
    return text.replace("-", _MINUS) if rcParams["axes.unicode_minus"] else text


class PlainFormatter(ticker.Formatter):
    """Plain decimal tick labels in units of *scale*.

    On a linear axis every label has the same number of decimals, the fewest
    that write every tick exactly ("0.25, 0.50, 0.75").  On a log axis each
    label is the shortest decimal of its tick ("0.3, 1, 20").  Never an
    offset, never an exponent.

    Parameters
    ----------
    scale : float, optional
        The value written as "1" (``10**scale_exponent(values)``).
    log : bool, optional
        Format for a logarithmic axis.
    """

    def __init__(self, scale=1.0, log=False):
        self.scale = float(scale)
        self.log = bool(log)
        self.decimals = 0

    def set_locs(self, locs):
        super().set_locs(locs)
        vals = np.unique(np.asarray(locs, dtype=float) / self.scale)
        vals = vals[np.isfinite(vals)]
        if self.log or not vals.size:
            return
        step = np.min(np.diff(vals)) if vals.size > 1 else (abs(vals[0]) or 1.0)
        for decimals in range(0, 9):
            if np.all(np.abs(np.round(vals, decimals) - vals) <= 1e-6 * step):
                break
        self.decimals = decimals

    def __call__(self, x, pos=None):
        v = x / self.scale
        if not np.isfinite(v):
            return ""
        if self.log:
            text = np.format_float_positional(v, precision=6, unique=True,
                                              fractional=False, trim="-")
        else:
            text = f"{v:.{self.decimals}f}"
        return _finish(text)


class LogTicks(ticker.Locator):
    """Major ticks of a logarithmic flux axis that are all worth a label.

    Decades when at least three are in view; else 1-2-5 per decade (or
    1-2-3-5 when 1-2-5 would leave fewer than four labels); else every
    integer multiple of a decade; else (a range narrower than that) evenly
    spaced round numbers.  At least two labelled ticks in every case.

    Parameters
    ----------
    max_ticks : int, optional
        Most decades labelled; beyond, every second (third, ...) decade.
    """

    def __init__(self, max_ticks=8):
        self.max_ticks = int(max_ticks)

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def tick_values(self, vmin, vmax):
        vmin, vmax = sorted((float(vmin), float(vmax)))
        if not (np.isfinite(vmin) and np.isfinite(vmax)) or vmax <= 0:
            return np.array([])
        if vmin <= 0:
            vmin = vmax * 1e-3
        lo, hi = int(np.floor(np.log10(vmin))), int(np.ceil(np.log10(vmax)))
        decades = 10.0 ** np.arange(lo, hi + 1)
        tol = 1e-9
        for subs, least in (((1.0,), 3), ((1.0, 2.0, 5.0), 4), ((1.0, 2.0, 3.0, 5.0), 3),
                            ((1.0, 2.0, 5.0), 2), (tuple(range(1, 10)), 2)):
            ticks = np.sort(np.outer(decades, subs).ravel())
            inside = (ticks >= vmin * (1 - tol)) & (ticks <= vmax * (1 + tol))
            if inside.sum() >= least:
                if subs == (1.0,) and inside.sum() > self.max_ticks:
                    stride = int(np.ceil(inside.sum() / self.max_ticks))
                    ticks = ticks[::stride]
                return ticks
        return ticker.MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)


class CalendarFormatter(ticker.Formatter):
    """Calendar dates (UTC) of matplotlib date numbers, one format per axis.

    The format follows the spacing of the ticks so that no two labels are
    equal: years ("2019"), months ("2019-07"), days ("2019-07-28"), hours
    ("2019-07-28" over "13:00").  Ticks are rounded to the minute first, so
    that midnight never prints as 23:59 of the day before.
    """

    def __init__(self):
        self.fmt = "%Y"

    def set_locs(self, locs):
        super().set_locs(locs)
        vals = np.unique(np.asarray(locs, dtype=float))
        vals = vals[np.isfinite(vals)]
        step = np.min(np.diff(vals)) if vals.size > 1 else 366.0
        self.fmt = ("%Y" if step >= 360 else "%Y-%m" if step >= 28 else
                    "%Y-%m-%d" if step >= 0.999 else "%Y-%m-%d\n%H:%M")

    def __call__(self, x, pos=None):
        if not np.isfinite(x):
            return ""
        return num2date(round(x * 1440.0) / 1440.0).strftime(self.fmt)
