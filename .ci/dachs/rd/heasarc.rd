<!-- Local stand-in for HEASARC's TAP tables used by multilc (tap_server test tier).
  Installed by .ci/dachs/start as <inputsDir>/heasarc/q.rd; the CSV files in
  data/ are written by .ci/dachs/make_tables.py from the shared folder.
  Column names, types and units follow HEASARC's tables (FERMIGTRIG,
  SAXGRBMGRB, ICECUBEPSC); only the columns multilc reads or that carry
  real values are declared. -->
<resource schema="heasarc" resdir=".">
  <meta name="title">multilc test stand-in for HEASARC GRB and IceCube tables</meta>
  <meta name="description">Real FERMIGBRST/SAXGRBMGRB/IceCube IC40 values in
    the column layout of HEASARC's TAP tables; error_radius of the GRB tables
    is generated (see make_tables.py).  Test data only.</meta>
  <meta name="creationDate">2026-11-24T00:00:00</meta>
  <meta name="subject">gamma-ray bursts</meta>
  <meta name="subject">neutrino astronomy</meta>
  <meta name="creator.name">multilc developers</meta>

  <table id="fermigtrig" onDisk="True" adql="True">
    <meta name="description">Fermi GBM trigger catalog (FERMIGTRIG) layout,
      filled with the GBM burst catalog rows of shared/archive_samples.</meta>
    <column name="name" type="text" ucd="meta.id;meta.main"
      description="Source designation GRByymmddfff"/>
    <column name="trigger_name" type="text" ucd="meta.id"
      description="Fermi trigger designation bnyymmddfff"/>
    <column name="ra" type="double precision" unit="deg"
      ucd="pos.eq.ra;meta.main" description="Right ascension (ICRS)"/>
    <column name="dec" type="double precision" unit="deg"
      ucd="pos.eq.dec;meta.main" description="Declination (ICRS)"/>
    <column name="error_radius" type="double precision" unit="deg"
      ucd="stat.error;pos.eq" description="Position error radius (generated)"/>
    <column name="time" type="double precision" unit="d"
      ucd="time.epoch" description="Trigger time (MJD)"/>
    <column name="trigger_type" type="text" ucd="src.class"
      description="Trigger classification (GRB for every row here)"/>
    <column name="reliability" type="double precision" ucd="stat.probability"
      description="Classification reliability (NULL: not in the shared export)"/>
  </table>

  <table id="saxgrbmgrb" onDisk="True" adql="True">
    <meta name="description">BeppoSAX GRBM GRB catalog (SAXGRBMGRB) layout,
      all 1082 GRBs; unlocalised bursts have NULL ra/dec/error_radius.</meta>
    <column name="name" type="text" ucd="meta.id;meta.main"
      description="GRB designation"/>
    <column name="ra" type="double precision" unit="deg"
      ucd="pos.eq.ra;meta.main" description="Right ascension (ICRS)"/>
    <column name="dec" type="double precision" unit="deg"
      ucd="pos.eq.dec;meta.main" description="Declination (ICRS)"/>
    <column name="error_radius" type="double precision" unit="deg"
      ucd="stat.error;pos.eq" description="Position error radius (generated)"/>
    <column name="time" type="double precision" unit="d"
      ucd="time.epoch" description="Burst time (MJD)"/>
    <column name="fluence" type="double precision" unit="erg/cm**2"
      ucd="phot.fluence" description="Burst fluence"/>
  </table>

  <table id="icecubepsc" onDisk="True" adql="True">
    <meta name="description">IceCube 2008-2018 point-source event table
      (ICECUBEPSC) layout, filled with the complete IC40 season.</meta>
    <column name="time" type="double precision" unit="d"
      ucd="time.epoch" description="Event time (MJD, UT1)"/>
    <column name="event_energy" type="double precision" unit="GeV"
      ucd="phys.energy" description="Reconstructed muon energy"/>
    <column name="error_radius" type="double precision" unit="deg"
      ucd="stat.error;pos.eq" description="Angular error (AngErr)"/>
    <column name="ra" type="double precision" unit="deg"
      ucd="pos.eq.ra;meta.main" description="Right ascension (J2000)"/>
    <column name="dec" type="double precision" unit="deg"
      ucd="pos.eq.dec;meta.main" description="Declination (J2000)"/>
  </table>

  <data id="import_fermigtrig">
    <sources>data/fermigtrig.csv</sources>
    <csvGrammar/>
    <make table="fermigtrig"><rowmaker idmaps="*"/></make>
  </data>

  <data id="import_saxgrbmgrb">
    <sources>data/saxgrbmgrb.csv</sources>
    <csvGrammar/>
    <make table="saxgrbmgrb"><rowmaker idmaps="*"/></make>
  </data>

  <data id="import_icecubepsc">
    <sources>data/icecubepsc.csv</sources>
    <csvGrammar/>
    <make table="icecubepsc"><rowmaker idmaps="*"/></make>
  </data>
</resource>
