<!-- Local stand-in for the ESA Gaia archive's gaiadr3.gaia_source (and
  gaia_source_lite) used by multilc (tap_server test tier).  Installed by
  .ci/dachs/start as <inputsDir>/gaiadr3/q.rd; data/gaia_source.csv is
  written by .ci/dachs/make_tables.py.  Column names, types and units are
  those of Gaia DR3 gaia_source; only the columns multilc reads are declared.
  The rows are generated (deterministic seed), not real Gaia sources. -->
<resource schema="gaiadr3" resdir=".">
  <meta name="title">multilc test stand-in for Gaia DR3 gaia_source</meta>
  <meta name="description">Generated sources around the yang_18 sample
    targets plus random all-sky sources, in the Gaia DR3 gaia_source column
    layout.  Test data only.</meta>
  <meta name="creationDate">2026-11-24T00:00:00</meta>
  <meta name="subject">astrometry</meta>
  <meta name="creator.name">multilc developers</meta>

  <STREAM id="gaia_columns">
    <column name="source_id" type="bigint" required="True"
      ucd="meta.id;meta.main"
      description="Unique source identifier (HEALPix level 12 index * 2**35 + n)"/>
    <column name="ra" type="double precision" unit="deg"
      ucd="pos.eq.ra;meta.main" description="Right ascension (ICRS, epoch ref_epoch)"/>
    <column name="dec" type="double precision" unit="deg"
      ucd="pos.eq.dec;meta.main" description="Declination (ICRS, epoch ref_epoch)"/>
    <column name="parallax" type="double precision" unit="mas"
      ucd="pos.parallax.trig" description="Parallax"/>
    <column name="pmra" type="double precision" unit="mas/yr"
      ucd="pos.pm;pos.eq.ra" description="Proper motion in RA * cos(dec)"/>
    <column name="pmdec" type="double precision" unit="mas/yr"
      ucd="pos.pm;pos.eq.dec" description="Proper motion in declination"/>
    <column name="phot_g_mean_mag" type="real" unit="mag"
      ucd="phot.mag;em.opt" description="G-band mean magnitude (Vega)"/>
    <column name="ref_epoch" type="double precision" unit="yr"
      ucd="meta.ref;time.epoch" description="Reference epoch (Julian year)"/>
    <column name="has_epoch_photometry" type="boolean"
      ucd="meta.code" description="Epoch photometry available"/>
  </STREAM>

  <table id="gaia_source" onDisk="True" adql="True">
    <meta name="description">gaia_source layout, generated rows.</meta>
    <primary>source_id</primary>
    <FEED source="gaia_columns"/>
  </table>

  <table id="gaia_source_lite" onDisk="True" adql="True">
    <meta name="description">gaia_source_lite layout (same rows).</meta>
    <primary>source_id</primary>
    <FEED source="gaia_columns"/>
  </table>

  <data id="import">
    <sources>data/gaia_source.csv</sources>
    <csvGrammar/>
    <make table="gaia_source"><rowmaker idmaps="*"/></make>
    <make table="gaia_source_lite"><rowmaker idmaps="*"/></make>
  </data>
</resource>
