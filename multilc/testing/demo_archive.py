"""A minimal archive and its service, for testing and benchmarking the engine.

`DemoArchive` (registered as ``"demo"`` when this module is imported; it is
not part of ``"all"`` unless imported) asks a batch of targets in one GET
request, ``{url}/lightcurves?id=1,2&ra=..&dec=..``, and expects CSV with the
header ``objectid,mjd_tdb,flux_mjy,flux_err_mjy,band``.  `demo_service`
mounts a matching handler on a `~multilc.testing.ReplayServer`: for target
*k* it returns ``n_points`` points in ``ztf:g`` with flux ``k / 10`` mJy at
MJD ``58000 + i``.  The expected values are therefore known to a test
without calling multilc.
"""
import io

import numpy as np
from astropy import units as u
from astropy.config import ConfigItem, ConfigNamespace
from astropy.time import Time

from multilc.collect.api import Archive, ParseResult, http_request, register_archive
from multilc.lightcurve import MultiBandLightCurve

__all__ = ["DemoArchive", "demo_service", "CSV_HEADER"]

CSV_HEADER = "objectid,mjd_tdb,flux_mjy,flux_err_mjy,band"


class Conf(ConfigNamespace):
    url = ConfigItem("http://127.0.0.1:9/demo", "Base URL of the demo service.")


conf = Conf()


@register_archive
class DemoArchive(Archive):
    """Demo service: one request per batch of targets (see module docstring)."""

    name = "demo"
    description = "engine test archive (local stand-in only)"
    returns = "photometry"
    bands = ("ztf:g",)
    chunk_size = 50
    concurrency = 4
    env_prefix = "DEMO"
    conf = conf

    def query(self, batch):
        url = self.setting("url").rstrip("/") + "/lightcurves"
        params = {"id": ",".join(str(i) for i in batch.objectid),
                  "ra": ",".join(f"{r:.7f}" for r in batch.ra),
                  "dec": ",".join(f"{d:.7f}" for d in batch.dec)}
        resp = http_request(self, batch, "GET", url, params=params, timeout=self.timeout,
                            expect="csv")
        return resp.text

    def parse(self, raw, batch):
        if not raw.startswith(CSV_HEADER):
            raise self.error(f"expected CSV starting with {CSV_HEADER!r}, got "
                             f"{raw[:60]!r}", batch)
        data = np.genfromtxt(io.StringIO(raw), delimiter=",", names=True,
                             dtype=None, encoding="utf-8")
        data = np.atleast_1d(data)
        if not len(data):
            return ParseResult(MultiBandLightCurve.empty())
        lc = MultiBandLightCurve.from_arrays(
            data["objectid"], data["band"].astype(str),
            Time(data["mjd_tdb"], format="mjd", scale="tdb"),
            data["flux_mjy"] * u.mJy, data["flux_err_mjy"] * u.mJy)
        return ParseResult(lc)


def demo_service(server, n_points=3, path="/demo/lightcurves"):
    """Mount the demo handler on *server*; returns the base URL for ``conf.url``."""
    from multilc.testing.replay import Reply

    def handler(request):
        ids = [int(x) for x in request.args["id"].split(",") if x]
        lines = [CSV_HEADER]
        for k in ids:
            for i in range(n_points):
                lines.append(f"{k},{58000 + i},{k / 10},{k / 100},ztf:g")
        return Reply(200, {"Content-Type": "text/csv"}, "\n".join(lines) + "\n")

    server.route(path, handler=handler)
    return server.url.rstrip("/") + path.rsplit("/", 1)[0]
