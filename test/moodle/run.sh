#!/usr/bin/env bash
# Issue 16's integration suite: a real Moodle 4.3, built from
# ../shared/fixtures/moodle by its own installer and generator, protected by
# pdp.apply_profile('moodle'), and Moodle's own code run against it.
# Output is TAP; exits non-zero when any check fails.
#
#   test/moodle/run.sh                 (make test runs it from tools/run-suites.sh)
#   PRIV_ROOT=... PORT=... /work/devtools/priv.sh cmd test/moodle/run.sh   (a private PostgreSQL tree)
#
# Needs root (the fixture's script installs PHP 8.2 with apt-get when it is
# missing, and runs the cluster as postgres); skipped with a message when the
# fixture is absent.  The PostgreSQL used is the one on PATH (pg_config
# --bindir): test/moodle/shims stand in for Debian's cluster tools, so the
# fixture's script runs unchanged against the system install or a private
# tree.  Moodle's code and data stay in a scratch directory, never in the
# repository.  PDP_MOODLE_KEEP=1 keeps the scratch directory and the cluster.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$(pwd)
FIX=${PDP_MOODLE_FIXTURE:-$REPO/../shared/fixtures/moodle}
if [ ! -f "$FIX/build-moodle-db.sh" ] || [ ! -f "$FIX/moodle-4.3.tar.gz" ]; then
  echo "1..0 # SKIP Moodle suite: no fixture at ../shared/fixtures/moodle (build-moodle-db.sh, moodle-4.3.tar.gz)"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "1..0 # SKIP Moodle suite: needs root (apt-get of PHP 8.2, a cluster run as postgres)"
  exit 0
fi

BIN=$("${PG_CONFIG:-pg_config}" --bindir)
PORT=${PDP_MOODLE_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
W=$(mktemp -d /tmp/pdp-moodle.XXXXXX)
chmod 0755 "$W"
SOCK=$W/sock
mkdir -p "$SOCK"; chown postgres "$SOCK"
M=$W/m                      # the fixture script's WORK_DIR: www/, data/, keys/
PHP="php -d max_input_vars=5000"
API=$REPO/test/moodle/moodle_api.php

cleanup() {
  if [ -f "$W/pgdata/postmaster.pid" ] && [ -z "${PDP_MOODLE_KEEP:-}" ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$W/pgdata" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -z "${PDP_MOODLE_KEEP:-}" ]; then rm -rf "$W"; else echo "# kept $W (cluster on port $PORT, socket $SOCK)"; fi
}
trap cleanup EXIT

n=0; failed=0
ok()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
# check DESC COMMAND...: ok when the command succeeds; its output is shown when it does not.
check() {
  local d=$1; shift
  local out
  if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "$out"; fi
}
q()  { psql -X -qAt -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d moodle "$@"; }
qm() { psql -X -qAt -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U moodleuser -d moodle "$@"; }
# SQL that must return exactly "t".
sql_true() { local r; r=$(q -c "$1" 2>&1); [ "$r" = t ] || { echo "$r"; return 1; }; }
# A Moodle action: its TAP lines renumbered, anything else as diagnostics.
moodle() {
  local out rc line got=0
  out=$(cd "$M/www" && $PHP "$API" "$M/www" "$@" 2>&1); rc=$?
  while IFS= read -r line; do
    case $line in
      "ok - "*)     ok "${line#ok - }"; got=1 ;;
      "not ok - "*) n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - ${line#not ok - }"; got=1 ;;
      "# "*)        echo "$line" ;;
      *)            [ -n "$line" ] && echo "# $line" ;;
    esac
  done <<<"$out"
  if [ $rc -ne 0 ] || [ $got -eq 0 ]; then not_ok "Moodle action '$*' ran to its end (exit $rc)"; fi
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

# 1. Moodle, built by its own installer and generator --------------------------
t0=$(date +%s)
echo "# building Moodle 4.3 with $BIN on port $PORT in $W (about 2 minutes)"
skip_apt=
command -v php >/dev/null && grep -qi '^pgsql$' <<<"$(php -m 2>/dev/null)" && skip_apt=1
if (cd "$FIX" && PATH="$REPO/test/moodle/shims:$BIN:$PATH" MOODLE_PGDATA="$W/pgdata" MOODLE_PGSOCK="$SOCK" \
      PGHOST="$SOCK" PGPORT="$PORT" PDP_KEYGEN="$REPO/tools/pdp-keygen" SKIP_APT=$skip_apt \
      ./build-moodle-db.sh moodle-4.3.tar.gz "$M" "$PORT") >"$W/build.log" 2>&1; then
  ok "Moodle 4.3 installed and filled by its own CLI installer and generator ($(( $(date +%s) - t0 )) s)"
else
  not_ok "Moodle 4.3 installed and filled by its own CLI installer and generator" "$(tail -30 "$W/build.log")"
  echo "1..$n"; exit 1
fi

# Baseline: every scheduled task once, before pdp_ext is in the database (tasks
# that fail without pdp_ext, e.g. for want of a network, are not counted).
q -c "UPDATE mdl_task_scheduled SET nextruntime = 0, faildelay = 0 WHERE disabled = 0" >/dev/null
(cd "$M/www" && $PHP admin/cli/cron.php --keep-alive=0) >"$W/cron-before.log" 2>&1
q -c "SELECT classname FROM mdl_task_scheduled WHERE faildelay > 0 ORDER BY 1" >"$W/failing-before"
ran_before=$(grep -c '^Scheduled task complete:' "$W/cron-before.log")
echo "# before pdp_ext: $ran_before scheduled tasks ran, $(wc -l <"$W/failing-before") failed"

# Orphans and single-member conversations before anything pdp_ext does.
ORPHANS="SELECT 'forum_posts', count(*) FROM mdl_forum_posts p WHERE NOT EXISTS (SELECT 1 FROM mdl_forum_discussions d WHERE d.id = p.discussion)
 UNION ALL SELECT 'forum_discussions', count(*) FROM mdl_forum_discussions d WHERE NOT EXISTS (SELECT 1 FROM mdl_forum f WHERE f.id = d.forum)
 UNION ALL SELECT 'conversation_members', count(*) FROM mdl_message_conversation_members m WHERE NOT EXISTS (SELECT 1 FROM mdl_message_conversations c WHERE c.id = m.conversationid)
 UNION ALL SELECT 'messages', count(*) FROM mdl_messages m WHERE NOT EXISTS (SELECT 1 FROM mdl_message_conversations c WHERE c.id = m.conversationid)
 UNION ALL SELECT 'single_member_conversations', count(*) FROM mdl_message_conversations c WHERE c.type = 1 AND (SELECT count(*) FROM mdl_message_conversation_members m WHERE m.conversationid = c.id) = 1
 UNION ALL SELECT 'assign_submission', count(*) FROM mdl_assign_submission s WHERE NOT EXISTS (SELECT 1 FROM mdl_assign a WHERE a.id = s.assignment)
 UNION ALL SELECT 'question_attempt_step_data', count(*) FROM mdl_question_attempt_step_data x WHERE NOT EXISTS (SELECT 1 FROM mdl_question_attempt_steps s WHERE s.id = x.attemptstepid)
 UNION ALL SELECT 'data_content', count(*) FROM mdl_data_content x WHERE NOT EXISTS (SELECT 1 FROM mdl_data_records r WHERE r.id = x.recordid)
 UNION ALL SELECT 'user_enrolments', count(*) FROM mdl_user_enrolments x WHERE NOT EXISTS (SELECT 1 FROM mdl_user u WHERE u.id = x.userid)
 UNION ALL SELECT 'user_info_data', count(*) FROM mdl_user_info_data x WHERE NOT EXISTS (SELECT 1 FROM mdl_user u WHERE u.id = x.userid)
 UNION ALL SELECT 'role_assignments', count(*) FROM mdl_role_assignments x WHERE NOT EXISTS (SELECT 1 FROM mdl_user u WHERE u.id = x.userid)
 UNION ALL SELECT 'grade_grades', count(*) FROM mdl_grade_grades x WHERE NOT EXISTS (SELECT 1 FROM mdl_user u WHERE u.id = x.userid)"
q -F' ' -c "$ORPHANS" >"$W/orphans-before"

# 2. The profile --------------------------------------------------------------
check "pdp_ext created in Moodle's database; Moodle's role is a pdp_admin" \
  q -c "CREATE EXTENSION pdp_ext" -c "GRANT pdp_admin TO moodleuser"
sql_snapshot="SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
    SELECT tbl::text || '.' || col || ':' || (to_jsonb(s) - 'registered_at' - 'registered_by')::text AS x FROM pdp.subject_column s
    UNION ALL SELECT tbl::text || '.' || col || ':' || rule || ':' || coalesce(category, '') FROM pdp.column_rule
    UNION ALL SELECT purpose || ':' || legal_basis || ':' || coalesce(description, '') FROM pdp.purpose
    UNION ALL SELECT role::text || ':' || purpose FROM pdp.purpose_grant
    UNION ALL SELECT polrelid::regclass::text || ':' || polname FROM pg_policy
    UNION ALL SELECT to_jsonb(r)::text FROM (SELECT period, activity_table, activity_column FROM pdp.subject_retention) r) y"
before=$(q -c "$sql_snapshot")
dry=$(qm -F'|' -c "SELECT status, count(*) FROM pdp.apply_profile('moodle', true) GROUP BY 1 ORDER BY 1" 2>&1)
after=$(q -c "$sql_snapshot")
nsteps=$(qm -c "SELECT count(*) FROM pdp.apply_profile('moodle', true)" 2>/dev/null)
if [ "$before" = "$after" ] && [ "${nsteps:-0}" -gt 250 ] && ! grep -qv -E '^(would run|skipped|review)\|' <<<"$dry"; then
  ok "apply_profile('moodle', dry_run => true) lists $nsteps steps and changes nothing"
else
  not_ok "apply_profile('moodle', dry_run => true) lists every step and changes nothing" "$dry"
fi
missing=$(q -c "BEGIN" -c "DROP TABLE mdl_tool_monitor_history" -c "
  SELECT bool_and(status = 'skipped' AND detail = 'table is missing') AND count(*) = 1
    FROM pdp.apply_profile('moodle', true) WHERE what LIKE 'mdl_tool_monitor_history.%'" -c "ROLLBACK" 2>&1)
if [ "$missing" = t ]; then ok "a table the profile names that this database lacks is reported, not fatal"
else not_ok "a table the profile names that this database lacks is reported, not fatal" "$missing"; fi
t1=$(date +%s%N)
applied=$(qm -F'|' -c "SELECT step, what, status, detail FROM pdp.apply_profile('moodle') WHERE status NOT IN ('done', 'already')" 2>&1)
apply_ms=$(ms_since "$t1")
echo "# apply_profile('moodle') took $apply_ms ms (target 10 s)"
if ! grep -q '|failed|' <<<"$applied"; then
  ok "apply_profile('moodle'): no step failed"
else
  not_ok "apply_profile('moodle'): no step failed" \
    "$(grep '|failed|' <<<"$applied" | awk -F'|' '{print $4}' | sort | uniq -c)"
fi
before=$(q -c "$sql_snapshot")
again=$(qm -F'|' -c "SELECT status, count(*) FROM pdp.apply_profile('moodle') GROUP BY 1 ORDER BY 1" 2>&1)
after=$(q -c "$sql_snapshot")
if [ "$before" = "$after" ] && ! grep -qv -E '^(already|skipped|review)\|' <<<"$again"; then
  ok "apply_profile('moodle') a second time changes nothing"
else
  not_ok "apply_profile('moodle') a second time changes nothing" "$again"
fi
upgraded=$(q -c "BEGIN" -c "ALTER TABLE mdl_user ADD COLUMN pdp_suite_added varchar(100) NOT NULL DEFAULT ''" \
            -c "UPDATE mdl_user SET pdp_suite_added = email" \
            -c "SELECT count(*) FROM pdp.discover('public', 200) WHERE table_name = 'mdl_user'::regclass
                   AND column_name = 'pdp_suite_added' AND category = 'email'" -c "ROLLBACK" 2>&1)
if [ "$upgraded" = 1 ]; then ok "a column a Moodle upgrade adds to a profiled table shows up in discovery"
else not_ok "a column a Moodle upgrade adds to a profiled table shows up in discovery" "$upgraded"; fi
check "the core personal tables are protected" sql_true "
  SELECT count(DISTINCT polrelid) >= 18 FROM pg_policy WHERE polname = 'pdp_select'"
check "Moodle's role declares the purpose moodle_lms" \
  q -c "ALTER ROLE moodleuser IN DATABASE moodle SET pdp.purpose = 'moodle_lms'"

# 3. Moodle's own code, protection on ----------------------------------------
moodle login nurlan.abenov1 Learner-1234
moodle users
moodle users_consent
moodle course
moodle forum
moodle grade
moodle message
moodle events
moodle enrolled
moodle delete_user
q -c "UPDATE mdl_task_scheduled SET nextruntime = 0, faildelay = 0 WHERE disabled = 0" >/dev/null
t1=$(date +%s)
if (cd "$M/www" && $PHP admin/cli/cron.php --keep-alive=0) >"$W/cron-after.log" 2>&1; then cron_rc=0; else cron_rc=$?; fi
q -c "SELECT classname FROM mdl_task_scheduled WHERE faildelay > 0 ORDER BY 1" >"$W/failing-after"
new_failures=$(comm -13 "$W/failing-before" "$W/failing-after")
ran_after=$(grep -c '^Scheduled task complete:' "$W/cron-after.log")
if [ $cron_rc -eq 0 ] && [ -z "$new_failures" ] && [ "$ran_after" -ge "$ran_before" ]; then
  ok "admin/cli/cron.php runs every scheduled task ($ran_after ran, as many as before pdp_ext; $(( $(date +%s) - t1 )) s) with no new failure"
else
  not_ok "admin/cli/cron.php runs every scheduled task with no new failure" \
    "exit $cron_rc; $ran_after tasks ran ($ran_before before pdp_ext); newly failing: $new_failures" \
    "$(grep -E 'task failed|Exception|ERROR' "$W/cron-after.log" | head -20)"
fi
moodle purge_caches
check "admin/cli/purge_caches.php" bash -c "cd '$M/www' && $PHP admin/cli/purge_caches.php"

# 4. A restricted learner: clear errors, no silent no-ops ---------------------
rid=$(q -c "SELECT id FROM mdl_user WHERE username = 'dana.sultanova2'")
rsnap="SELECT md5(u::text) || (SELECT count(*) FROM mdl_user_enrolments e WHERE e.userid = u.id) FROM mdl_user u WHERE u.id = $rid"
r_before=$(q -c "$rsnap")
q -c "SELECT pdp.restrict_subject($rid::bigint, 'suite: the learner contests the accuracy of their data')" >/dev/null
moodle restricted dana.sultanova2 Learner-1234 "$rid"
check "nothing of the restricted learner changed" bash -c "[ \"\$1\" = \"\$2\" ]" _ "$r_before" "$(q -c "$rsnap")"
q -c "SELECT pdp.lift_restriction($rid::bigint)" >/dev/null

# 5. A purge ------------------------------------------------------------------
keep_ids=$(q -c "SELECT string_agg(id::text, ',') FROM mdl_user u WHERE u.deleted = 0 AND (u.id = 1
     OR u.id::text = ANY (string_to_array((SELECT value FROM mdl_config WHERE name = 'siteadmins'), ','))
     OR (u.lastaccess = 0 AND EXISTS (SELECT 1 FROM mdl_user_enrolments e WHERE e.userid = u.id)))")
users_before=$(q -c "SELECT count(*) FROM mdl_user")
# The DPO lets this purge remove up to half of a table's subjects (the
# fixture backdates half of the generated learners; the safety valve's
# default share would stop it), where this pdp_ext has the setting.
purge=$(q -F' ' -c "DO \$\$ BEGIN PERFORM set_config('pdp.purge_max_share', '0.5', false);
                             EXCEPTION WHEN OTHERS THEN NULL; END \$\$" \
              -c "SELECT table_name, action, rows FROM pdp.purge_expired()" 2>&1)
echo "$purge" | head -20 | sed 's/^/# purge: /'
users_after=$(q -c "SELECT count(*) FROM mdl_user")
if [ "$users_after" -lt "$users_before" ]; then
  ok "the purge removed expired learners ($((users_before - users_after)) of $users_before users)"
else
  not_ok "the purge removed expired learners" "users before $users_before, after $users_after" "$purge"
fi
check "the purge kept the guest, the administrators and every never-logged-in enrolled learner" sql_true "
  SELECT count(*) = array_length('{$keep_ids}'::bigint[], 1) FROM mdl_user WHERE id = ANY ('{$keep_ids}'::bigint[])"
q -F' ' -c "$ORPHANS" >"$W/orphans-after"
check "the purge left nothing orphaned (no table has more orphans than before)" \
  awk 'NR == FNR { b[$1] = $2; next } $2 > b[$1] { print $1 ": " b[$1] " before, " $2 " after"; bad = 1 } END { exit bad }' \
  "$W/orphans-before" "$W/orphans-after"

# 6. An export: no password hash ----------------------------------------------
xid=$(q -c "SELECT id FROM mdl_user WHERE username = 'aruzhan.kassymova6'")
t1=$(date +%s%N)
q -c "SELECT pdp.export_subject($xid::bigint)" >"$W/export.json" 2>"$W/export.err"; xrc=$?
echo "# export_subject of a generated learner took $(ms_since "$t1") ms, $(wc -c <"$W/export.json") bytes (target 300 ms)"
hash=$(q -c "SELECT password FROM mdl_user WHERE id = $xid")
secret=$(q -c "SELECT secret FROM mdl_user WHERE id = $xid")
if [ $xrc -eq 0 ] && [ -s "$W/export.json" ] && ! grep -qF -- "$hash" "$W/export.json" \
   && { [ -z "$secret" ] || ! grep -qF -- "\"$secret\"" "$W/export.json"; }; then
  ok "the export of a learner holds no password hash or secret"
else
  not_ok "the export of a learner holds no password hash or secret" "$(cat "$W/export.err")" \
    "$(grep -qF -- "$hash" "$W/export.json" && echo 'the password hash is in the export')"
fi

# 7. An erasure, then a search of a dump for what identified the learner --------
eid=$(q -c "SELECT id FROM mdl_user WHERE username = 'madina.zhaksylykova4'")
q -c "SELECT u.username, u.email, u.firstname || ' ' || u.lastname, u.phone1, u.phone2, u.idnumber FROM mdl_user u WHERE u.id = $eid
      UNION ALL SELECT d.data, NULL, NULL, NULL, NULL, NULL FROM mdl_user_info_data d JOIN mdl_user_info_field f ON f.id = d.fieldid
       WHERE d.userid = $eid AND f.shortname IN ('iin', 'mobile')" -F $'\t' | tr '\t' '\n' | grep -v '^$' >"$W/needles"
echo "# searching for $(wc -l <"$W/needles") values of the erased learner (username, e-mail, name, phones, student id, IIN, mobile)"
t1=$(date +%s%N)
receipt=$(q -c "SELECT pdp.erase_subject($eid::bigint, 'suite: erasure request')" 2>&1); erc=$?
echo "# erase_subject of a generated learner took $(ms_since "$t1") ms (target 300 ms)"
if [ $erc -eq 0 ]; then ok "erase_subject of a generated learner"; else not_ok "erase_subject of a generated learner" "$receipt"; fi
"$BIN/pg_dump" -h "$SOCK" -p "$PORT" -U postgres --data-only moodle >"$W/dump.sql"
check "no registered column names the erased learner any more" sql_true "
  SELECT coalesce(bool_and(n = 0), true) FROM (
    SELECT (SELECT count(*) FROM pdp._exec_as_owner(s.tbl, format('SELECT 1 FROM %I.%I WHERE %I::text = %L',
                                                                   n.nspname, r.relname, s.col, '$eid')) AS x(one integer)) AS n
      FROM pdp.subject_column s JOIN pg_class r ON r.oid = s.tbl JOIN pg_namespace n ON n.oid = r.relnamespace) c"
# Free text and JSON (README of the fixture): what stays there is for the
# erasure's leftover search, listed here; anywhere else is a failure.
FREE_TEXT="mdl_logstore_standard_log.other mdl_forum_posts.message mdl_forum_discussions.name mdl_messages.fullmessage
  mdl_messages.fullmessagehtml mdl_messages.smallmessage mdl_notifications.fullmessage mdl_notifications.fullmessagehtml
  mdl_notifications.smallmessage mdl_user.description"
python3 - "$W/needles" "$W/dump.sql" "$FREE_TEXT" >"$W/leftovers" <<'PY'
import sys
needles = [l.rstrip('\n') for l in open(sys.argv[1], encoding='utf-8') if l.strip()]
free = set(sys.argv[3].split())
kinds = ['username', 'e-mail', 'full name', 'phone1', 'phone2', 'student id', 'a profile field (IIN or mobile)']
hits = {}
table, cols = None, []
for line in open(sys.argv[2], encoding='utf-8', errors='replace'):
    if line.startswith('COPY '):
        table = line.split()[1].split('.')[-1]
        cols = line[line.index('(') + 1:line.index(')')].replace('"', '').split(', ')
        continue
    if line.startswith('\\.'):
        table = None
        continue
    for i, n in enumerate(needles):
        if n in line:
            vals = line.rstrip('\n').split('\t') if table else []
            where = [table + '.' + c for c, v in zip(cols, vals) if n in v] or [str(table)]
            for w in where:
                hits.setdefault(w, set()).add(kinds[min(i, len(kinds) - 1)])
for w, ks in sorted(hits.items()):
    print('%s %s: %s' % ('free' if w in free else 'place', w, ', '.join(sorted(ks))))
PY
if grep -q '^free ' "$W/leftovers"; then
  sed -n 's/^free /left in free text (for the leftover search of the erasure issue): /p' "$W/leftovers" | sed 's/^/# /'
fi
if [ -s "$W/dump.sql" ] && ! grep -q '^place ' "$W/leftovers"; then
  ok "a pg_dump after the erasure holds none of the learner's username, e-mail, name, phones, student id or IIN outside free text"
else
  not_ok "a pg_dump after the erasure holds none of the learner's username, e-mail, name, phones, student id or IIN outside free text" \
    "$(sed -n 's/^place //p' "$W/leftovers")"
fi

echo "# total $(( $(date +%s) - t0 )) s"
echo "1..$n"
[ $failed -eq 0 ]
