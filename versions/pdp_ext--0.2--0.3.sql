-- pdp_ext 0.2 -> 0.3
-- Every change here is also made in src/sql/*.sql (the 0.3 install script);
-- test/tap/010_upgrade.pl checks that an updated 0.2 (and 0.1) and a fresh 0.3
-- have the same catalog entries.
\echo Use "ALTER EXTENSION pdp_ext UPDATE TO '0.3'" to load this file. \quit
