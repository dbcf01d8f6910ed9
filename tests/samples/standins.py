"""Local stand-ins for NED, VizieR and SIMBAD answers, in their real VOTable layouts.

The layouts follow the real recorded answers shipped with astroquery 0.4.11 in its own
test data (``astroquery/ipac/ned/tests/data/query_refcode.xml``,
``astroquery/vizier/tests/data/kang2010.xml``, ``astroquery/simbad/tests/data/*.xml``)
and the TAP capabilities document of ``pyvo/dal/tests/data/tap/capabilities.xml``:
the same VOTable versions, RESOURCE/TABLE nesting, FIELD names, datatypes and units.
The rows are built at test time from the reference target lists in ``shared/samples``.

One deliberate difference: NED's main table now names its position columns ``RA`` and
``DEC`` (unit ``degrees``), as shown in the astroquery NED documentation
(https://astroquery.readthedocs.io/en/latest/ipac/ned/ned.html), where the 2013
recording still says ``RA(deg)``/``DEC(deg)``.
"""
from __future__ import annotations

import csv
import math
from xml.sax.saxutils import escape, quoteattr


def read_reference(path):
    """Rows of a reference list (``name,ra_deg,dec_deg,redshift,bibcode,label,source``)."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        row["ra_deg"] = float(row["ra_deg"])
        row["dec_deg"] = float(row["dec_deg"])
        row["redshift"] = float(row["redshift"]) if row["redshift"] else None
    return rows


def _td(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "<TD></TD>"
    return f"<TD>{escape(str(value))}</TD>"


def _fields(fields):
    out = []
    for spec in fields:
        attrs = " ".join(f"{k}={quoteattr(str(v))}" for k, v in spec.items())
        out.append(f"<FIELD {attrs}/>")
    return "\n".join(out)


def _rows(rows):
    return "\n".join("<TR>" + "".join(_td(v) for v in row) + "</TR>" for row in rows)


# --------------------------------------------------------------------------------------
# NED: GET /cgi-bin/objsearch?search_type=Search&refcode=...&of=xml_main

NED_FIELDS = [
    {"ID": "main_col1", "name": "No.", "ucd": "meta.number", "datatype": "int"},
    {"ID": "main_col2", "name": "Object Name", "ucd": "meta.id;meta.main", "datatype": "char",
     "arraysize": "30"},
    {"ID": "main_col3", "name": "RA", "ucd": "pos.eq.ra;meta.main", "datatype": "double",
     "unit": "degrees"},
    {"ID": "main_col4", "name": "DEC", "ucd": "pos.eq.dec;meta.main", "datatype": "double",
     "unit": "degrees"},
    {"ID": "main_col5", "name": "Type", "ucd": "src.class", "datatype": "char", "arraysize": "*"},
    {"ID": "main_col6", "name": "Velocity", "ucd": "src.veloc.hc", "datatype": "double",
     "unit": "km/sec"},
    {"ID": "main_col7", "name": "Redshift", "ucd": "src.redshift", "datatype": "double"},
    {"ID": "main_col8", "name": "Redshift Flag", "ucd": "meta.code;src.redshift",
     "datatype": "char", "arraysize": "*"},
    {"ID": "main_col9", "name": "Magnitude and Filter", "ucd": "meta.code;src.magnitude",
     "datatype": "char", "arraysize": "*"},
    {"ID": "main_col10", "name": "Separation", "ucd": "pos.distance", "datatype": "double",
     "unit": "arcmin"},
    {"ID": "main_col11", "name": "References", "ucd": "meta.bib;meta.number", "datatype": "int"},
    {"ID": "main_col12", "name": "Notes", "ucd": "meta.note;meta.number", "datatype": "int"},
    {"ID": "main_col13", "name": "Photometry Points", "ucd": "phot;meta.number", "datatype": "int"},
    {"ID": "main_col14", "name": "Positions", "ucd": "pos;meta.number", "datatype": "int"},
    {"ID": "main_col15", "name": "Redshift Points", "ucd": "src.redshift;meta.number",
     "datatype": "int"},
    {"ID": "main_col16", "name": "Diameter Points", "ucd": "phys.size.diameter;meta.number",
     "datatype": "int"},
    {"ID": "main_col17", "name": "Associations", "ucd": "meta.id.assoc;meta.number",
     "datatype": "int"},
]

# speed of light 299792.458 km/s (SI definition), for NED's Velocity = c z column.
C_KM_S = 299792.458


def ned_votable(refcode, objects):
    """NED ``query_refcode`` answer; ``objects`` = list of (name, ra, dec, redshift)."""
    rows = []
    for number, (name, ra, dec, z) in enumerate(objects, start=1):
        velocity = None if z is None else round(z * C_KM_S, 1)
        rows.append([number, name, f"{ra:.6f}", f"{dec:.6f}", "QSO", velocity, z,
                     "SPEC" if z is not None else "", "", None, 5, 0, 10, 3, 2, 0, 0])
    ref = escape(refcode)
    return f"""<?xml version="1.0"?>
<VOTABLE version="1.1">
<DEFINITIONS>
<COOSYS ID="J2000" equinox="2000." epoch="2000." system="eq_FK5" />
</DEFINITIONS>
<RESOURCE type="results">
<DESCRIPTION>Results from query to NASA/IPAC Extragalactic Database (NED) \
[local stand-in]</DESCRIPTION>
<INFO name="QUERY_STATUS" value="OK"/>
<TABLE ID="NED_MainTable" name="Main Information Table for object(s) in publication {ref}">
<PARAM name="Equinox" datatype="char" arraysize="*" ucd="time.equinox" value="J2000.0"/>
<PARAM name="CoordSystem" datatype="char" arraysize="*" ucd="pos.system.coord" value="Equatorial"/>
{_fields(NED_FIELDS)}
<DATA><TABLEDATA>
{_rows(rows)}
</TABLEDATA></DATA>
</TABLE>
</RESOURCE>
</VOTABLE>
"""


# --------------------------------------------------------------------------------------
# VizieR: POST /viz-bin/votable with a "-source=<catalog>" script


def vizier_votable(catalog, table_name, fields, rows):
    """VizieR answer with one RESOURCE (the catalogue) holding one TABLE."""
    ident = catalog.replace("/", "_")
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.2" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns="http://www.ivoa.net/xml/VOTable/v1.2"
  xsi:schemaLocation="http://www.ivoa.net/xml/VOTable/v1.2 http://www.ivoa.net/xml/VOTable/v1.2">
 <DESCRIPTION>VizieR Astronomical Server [local stand-in]</DESCRIPTION>
<INFO ID="VERSION" name="votable-version" value="1.99+ (14-Oct-2013)"/>
<INFO ID="Ref" name="-ref" value="VOTx00001"/>
<INFO name="-out.form" value="mini"/>
<RESOURCE ID="yCat_{ident}" name="{escape(catalog)}">
  <DESCRIPTION>stand-in</DESCRIPTION>
  <COOSYS ID="J2000" system="eq_FK5" equinox="J2000"/>
  <TABLE ID="{ident}_{table_name}" name="{escape(catalog)}/{table_name}">
{_fields(fields)}
<DATA><TABLEDATA>
{_rows(rows)}
</TABLEDATA></DATA>
</TABLE>
</RESOURCE>
</VOTABLE>
"""


RA_FIELD = {"name": "_RAJ2000", "ucd": "pos.eq.ra", "ref": "J2000", "datatype": "double",
            "width": "10", "precision": "6", "unit": "deg"}
DE_FIELD = {"name": "_DEJ2000", "ucd": "pos.eq.dec", "ref": "J2000", "datatype": "double",
            "width": "10", "precision": "6", "unit": "deg"}


# --------------------------------------------------------------------------------------
# SIMBAD: TAP at /simbad/sim-tap (capabilities, then POST sync)

SIMBAD_FIELDS = [
    {"ID": "main_id", "arraysize": "*", "datatype": "char", "name": "main_id",
     "ucd": "meta.id;meta.main"},
    {"ID": "ra", "datatype": "double", "name": "ra", "precision": "10",
     "ucd": "pos.eq.ra;meta.main", "unit": "deg", "width": "13"},
    {"ID": "dec", "datatype": "double", "name": "dec", "precision": "10",
     "ucd": "pos.eq.dec;meta.main", "unit": "deg", "width": "13"},
    {"ID": "coo_err_maj", "datatype": "float", "name": "coo_err_maj", "unit": "mas",
     "ucd": "phys.angSize.smajAxis;pos.errorEllipse;pos.eq"},
    {"ID": "coo_err_min", "datatype": "float", "name": "coo_err_min", "unit": "mas",
     "ucd": "phys.angSize.sminAxis;pos.errorEllipse;pos.eq"},
    {"ID": "coo_err_angle", "datatype": "short", "name": "coo_err_angle", "unit": "deg",
     "ucd": "pos.posAng;pos.errorEllipse;pos.eq"},
    {"ID": "coo_wavelength", "arraysize": "1", "datatype": "char", "name": "coo_wavelength",
     "ucd": "instr.bandpass;pos.eq"},
    {"ID": "coo_bibcode", "arraysize": "*", "datatype": "char", "name": "coo_bibcode",
     "ucd": "meta.bib.bibcode;pos.eq"},
    {"ID": "bibcode", "arraysize": "*", "datatype": "char", "name": "bibcode",
     "ucd": "meta.bib.bibcode"},
    {"ID": "obj_freq", "datatype": "short", "name": "obj_freq", "ucd": "meta.number"},
]


def simbad_votable(bibcode, objects):
    """SIMBAD TAP answer to ``query_bibobj``; ``objects`` = list of (main_id, ra, dec)."""
    rows = [[name, f"{ra:.10f}", f"{dec:.10f}", 50.0, 40.0, 90, "O", "2020yCat.1350....0G",
             bibcode, 1] for name, ra, dec in objects]
    return f"""<?xml version="1.0" encoding="utf-8"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="http://www.ivoa.net/xml/VOTable/v1.3 \
http://www.ivoa.net/xml/VOTable/VOTable-1.4.xsd">
 <RESOURCE type="results">
  <INFO name="QUERY_STATUS" value="OK"/>
  <TABLE ID="result_S1" name="result_S1">
{_fields(SIMBAD_FIELDS)}
   <DATA>
    <TABLEDATA>
{_rows(rows)}
    </TABLEDATA>
   </DATA>
  </TABLE>
 </RESOURCE>
</VOTABLE>
"""


def tap_capabilities(base_url, hard_limit=2000000):
    """A VOSI capabilities document declaring a TAP service and its output limit."""
    return f"""<?xml version="1.0" encoding="utf-8"?>
<cap:capabilities xmlns:cap="http://www.ivoa.net/xml/VOSICapabilities/v1.0" \
xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0" \
xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0" \
xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1" \
xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <capability standardID="ivo://ivoa.net/std/VOSI#capabilities">
    <interface role="std" xsi:type="vs:ParamHTTP">
      <accessURL use="full">{escape(base_url)}/capabilities</accessURL>
    </interface>
  </capability>
  <capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">
    <interface role="std" xsi:type="vs:ParamHTTP">
      <accessURL use="base">{escape(base_url)}</accessURL>
    </interface>
    <language>
      <name>ADQL</name>
      <version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>
      <description>ADQL 2.0</description>
    </language>
    <outputFormat ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary">
      <mime>application/x-votable+xml</mime>
      <alias>votable</alias>
    </outputFormat>
    <executionDuration>
      <default>3600</default>
      <hard>7200</hard>
    </executionDuration>
    <outputLimit>
      <default unit="row">10000</default>
      <hard unit="row">{hard_limit}</hard>
    </outputLimit>
    <uploadLimit>
      <hard unit="byte">100000000</hard>
    </uploadLimit>
  </capability>
</cap:capabilities>
"""
