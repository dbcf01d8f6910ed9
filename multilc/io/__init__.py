"""File formats and the unified I/O registry of multilc.

`multilc.io.registry` is a leaf module (it imports nothing from multilc), so
`multilc.lightcurve` can attach ``read``/``write`` to the class;
`multilc.io.formats` registers multilc's own formats when ``multilc`` is
imported.
"""
