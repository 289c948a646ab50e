#!/bin/bash
# Issue 9's acceptance run: import + train --algorithm auto --activate + export on Ta Feng, each
# step under /usr/bin/time -v with uptime before and after, into $OUT (default var/tafeng-700k/run).
# Any other held-out folder (bench/holdout_last.py) too: DATA=var/cj-holdout FORMAT=canonical|movielens.
# DESTROYS and re-creates the database named in DATABASE_URL (its last path segment).
# Then: python bench/tafeng_700k.py --data var/tafeng-700k --export $OUT/export.csv --time-dir $OUT
set -u
: "${DATABASE_URL:?set DATABASE_URL to a scratch PostgreSQL database}"
PY=${PY:-python}
DATA=${DATA:-var/tafeng-700k}
FORMAT=${FORMAT:-canonical}
OUT=${OUT:-$DATA/run}
DB=${DATABASE_URL##*/}
rm -rf "$OUT"; mkdir -p "$OUT"
[ -f "$DATA/heldout.csv" ] || $PY bench/tafeng_canonical.py --share 1.0 --hold-out-last --out "$DATA"
dropdb -h 127.0.0.1 -U postgres --if-exists "$DB" && createdb -h 127.0.0.1 -U postgres "$DB"
$PY manage.py migrate -v0
step() {  # step NAME command...
  local name=$1; shift
  { date -u +%FT%TZ; uptime; } > "$OUT/$name.before"
  /usr/bin/time -v "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"; echo $? > "$OUT/$name.rc"
  { date -u +%FT%TZ; uptime; } > "$OUT/$name.after"
}
step import $PY manage.py import_dataset --format "$FORMAT" --no-progress "$DATA"
step train $PY manage.py train --algorithm auto --activate
step export $PY manage.py export_recommendations "$OUT/export.csv" --k 10 --exclude-seen
