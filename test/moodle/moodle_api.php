<?php
// Moodle's own code against a database pdp_ext protects (issue 16's suite).
//
//   php -d max_input_vars=5000 moodle_api.php MOODLE_DIR ACTION [ARGS...]
//
// Each action calls Moodle's API as Moodle would and prints one TAP line per
// check, "ok - ..." or "not ok - ...", without numbers (test/moodle/run.sh
// numbers them); other output is diagnostics.  Personal values the suite
// made up itself (usernames like pdp.suite.*) may appear; nothing else does.
define('CLI_SCRIPT', true);
$moodledir = $argv[1];
$action = $argv[2];
$args = array_slice($argv, 3);
require($moodledir . '/config.php');
require_once($CFG->libdir . '/clilib.php');
require_once($CFG->libdir . '/phpunit/classes/util.php');
require_once($CFG->libdir . '/gradelib.php');
require_once($CFG->libdir . '/enrollib.php');
require_once($CFG->dirroot . '/user/lib.php');
require_once($CFG->dirroot . '/user/profile/lib.php');
require_once($CFG->dirroot . '/mod/forum/lib.php');

function tap($ok, $what, $diag = '') {
    echo ($ok ? 'ok' : 'not ok') . ' - ' . $what . "\n";
    if (!$ok && $diag !== '') {
        foreach (explode("\n", $diag) as $l) { echo '# ' . $l . "\n"; }
    }
    return $ok;
}
// Runs $fn; a check passes when it returns true and throws nothing.
function check($what, $fn) {
    try {
        $r = $fn();
        return tap($r === true, $what, is_string($r) ? $r : 'returned ' . var_export($r, true));
    } catch (\Throwable $e) {
        $m = get_class($e) . ': ' . $e->getMessage();
        if (isset($e->debuginfo)) { $m .= "\n" . $e->debuginfo; }
        return tap(false, $what, $m);
    }
}
// Runs $fn, which must FAIL with an exception whose text matches $pattern
// (a clear error), and must not have changed anything ($unchanged()).
function expect_error($what, $pattern, $fn, $unchanged) {
    try {
        $fn();
        $same = $unchanged();
        return tap(false, $what, $same ? 'no error, and nothing changed: a silent no-op' : 'no error: the change was made');
    } catch (\Throwable $e) {
        $m = $e->getMessage() . (isset($e->debuginfo) ? ' ' . $e->debuginfo : '');
        return tap(preg_match($pattern, $m) === 1 && $unchanged(), $what, 'error was: ' . $m);
    }
}
function gen() { return phpunit_util::get_data_generator(); }
function suite_course() {
    global $DB;
    return $DB->get_record('course', ['shortname' => 'PDPSUITE'], '*', MUST_EXIST);
}
function learner($username) {
    global $DB;
    return $DB->get_record('user', ['username' => $username, 'deleted' => 0], '*', MUST_EXIST);
}

cron_setup_user();
\core\session\manager::set_user(get_admin());

switch ($action) {
case 'login':   // login USERNAME PASSWORD
    check('an existing learner logs in (authenticate_user_login, complete_user_login)', function () use ($args) {
        $reason = null;
        $u = authenticate_user_login($args[0], $args[1], false, $reason);
        if (!$u) { return 'authenticate_user_login refused the login, reason ' . var_export($reason, true); }
        complete_user_login($u);
        global $DB;
        return $DB->get_field('user', 'lastlogin', ['id' => $u->id]) !== false;
    });
    break;

case 'users':
    check('the generator creates a user', function () {
        $u = gen()->create_user(['username' => 'pdp.suite.gen', 'firstname' => 'Suite', 'lastname' => 'Generated',
                                 'email' => 'pdp.suite.gen@example.kz']);
        return $u->id > 0;
    });
    check('user_create_user creates a user', function () {
        global $CFG;
        $id = user_create_user((object)['username' => 'pdp.suite.api', 'password' => 'Suite-pass-1', 'firstname' => 'Suite',
            'lastname' => 'Api', 'email' => 'pdp.suite.api@example.kz', 'auth' => 'manual', 'confirmed' => 1,
            'mnethostid' => $CFG->mnet_localhost_id]);
        return $id > 0;
    });
    break;

case 'users_consent':   // under a consent purpose: INSERT ... RETURNING must work
    // Every insert_record is INSERT ... RETURNING id: under a consent purpose
    // the statement gets its new row back, while the new learner, who has
    // not consented yet, stays invisible to that purpose (doc/consent.md);
    // creating accounts belongs to the contract purpose, which sees them.
    check('insert_record under the consent purpose moodle_analytics returns the new id (INSERT ... RETURNING); the learner stays hidden from that purpose until they consent', function () {
        global $CFG, $DB;
        $DB->execute("SET pdp.purpose = 'moodle_analytics'");
        try {
            $id = $DB->insert_record('user', (object)['username' => 'pdp.suite.consent', 'password' => 'x', 'firstname' => 'Suite',
                'lastname' => 'Consent', 'email' => 'pdp.suite.consent@example.kz', 'auth' => 'manual', 'confirmed' => 1,
                'mnethostid' => $CFG->mnet_localhost_id, 'timecreated' => time()]);
            $hidden = !$DB->record_exists('user', ['id' => $id]);
        } finally {
            $DB->execute("RESET pdp.purpose");
        }
        $seen = $DB->record_exists('user', ['id' => $id]);   // under the role's own purpose again
        return ($id > 0 && $hidden && $seen) ? true : 'id ' . var_export($id, true) . ', hidden ' . var_export($hidden, true)
            . ', seen under moodle_lms ' . var_export($seen, true);
    });
    break;

case 'course':
    check('a course, a manual enrolment and a custom profile field save', function () {
        global $DB;
        $course = gen()->create_course(['fullname' => 'pdp suite course', 'shortname' => 'PDPSUITE']);
        $u = learner('pdp.suite.api');
        $plugin = enrol_get_plugin('manual');
        $instance = $DB->get_record('enrol', ['courseid' => $course->id, 'enrol' => 'manual'], '*', MUST_EXIST);
        $roleid = $DB->get_field('role', 'id', ['shortname' => 'student']);
        $plugin->enrol_user($instance, $u->id, $roleid);
        $u->profile_field_mobile = '+7 747 000 00 01';
        profile_save_data($u);
        $saved = $DB->get_field_sql('SELECT d.data FROM {user_info_data} d JOIN {user_info_field} f ON f.id = d.fieldid
                                      WHERE d.userid = ? AND f.shortname = ?', [$u->id, 'mobile']);
        if ($saved !== '+7 747 000 00 01') { return 'profile field not saved'; }
        return is_enrolled(context_course::instance($course->id), $u);
    });
    break;

case 'forum':
    check('a forum discussion and a reply (forum_add_discussion, forum_add_new_post)', function () {
        global $DB, $USER;
        $course = suite_course();
        $forum = gen()->create_module('forum', ['course' => $course->id, 'name' => 'pdp suite forum']);
        $u = learner('pdp.suite.api');
        \core\session\manager::set_user($u);
        $d = (object)['course' => $course->id, 'forum' => $forum->id, 'name' => 'suite discussion', 'message' => 'suite message',
                      'messageformat' => FORMAT_PLAIN, 'messagetrust' => 0, 'mailnow' => 0, 'groupid' => -1, 'attachments' => null,
                      'itemid' => 0];
        $did = forum_add_discussion($d, null, null, $u->id);
        $disc = $DB->get_record('forum_discussions', ['id' => $did], '*', MUST_EXIST);
        $p = (object)['discussion' => $did, 'parent' => $disc->firstpost, 'userid' => $u->id, 'subject' => 'Re: suite',
                      'message' => 'suite reply', 'messageformat' => FORMAT_PLAIN, 'messagetrust' => 0, 'mailnow' => 0,
                      'itemid' => 0, 'course' => $course->id, 'forum' => $forum->id];
        $pid = forum_add_new_post($p, null);
        \core\session\manager::set_user(get_admin());
        return $DB->count_records('forum_posts', ['discussion' => $did]) == 2 && $pid > 0;
    });
    break;

case 'grade':
    check('grade_update for an assignment', function () {
        global $DB;
        $course = suite_course();
        $assign = gen()->create_module('assign', ['course' => $course->id, 'name' => 'suite essay', 'grade' => 100]);
        $u = learner('pdp.suite.api');
        $r = grade_update('mod/assign', $course->id, 'mod', 'assign', $assign->id, 0,
                          [$u->id => ['userid' => $u->id, 'rawgrade' => 77, 'usermodified' => get_admin()->id]]);
        if ($r !== GRADE_UPDATE_OK) { return 'grade_update returned ' . $r; }
        $item = $DB->get_record('grade_items', ['itemmodule' => 'assign', 'iteminstance' => $assign->id, 'itemnumber' => 0]);
        return (float)$DB->get_field('grade_grades', 'rawgrade', ['itemid' => $item->id, 'userid' => $u->id]) == 77.0;
    });
    break;

case 'message':
    check('a message between two users (message_send)', function () {
        global $DB;
        $from = learner('pdp.suite.gen');
        $to = learner('pdp.suite.api');
        $m = new \core\message\message();
        $m->component = 'moodle'; $m->name = 'instantmessage';
        $m->userfrom = $from; $m->userto = $to;
        $m->subject = 'suite'; $m->fullmessage = 'suite message body'; $m->fullmessageformat = FORMAT_PLAIN;
        $m->fullmessagehtml = ''; $m->smallmessage = 'suite'; $m->notification = 0; $m->courseid = SITEID;
        $id = message_send($m);
        return $id !== false && $DB->record_exists('messages', ['useridfrom' => $from->id, 'fullmessage' => 'suite message body']);
    });
    break;

case 'events':
    check('events are logged and a user reads their own log rows', function () {
        global $DB;
        $u = learner('pdp.suite.api');
        \core\session\manager::set_user($u);
        $ctx = context_course::instance(suite_course()->id);
        \core\event\course_viewed::create(['context' => $ctx])->trigger();
        get_log_manager(true);   // flushes the buffered log store
        \core\session\manager::set_user(get_admin());
        $n = $DB->count_records('logstore_standard_log', ['userid' => $u->id, 'eventname' => '\\core\\event\\course_viewed']);
        return $n >= 1 ? true : 'no course_viewed row for the user';
    });
    break;

case 'enrolled':
    check('get_enrolled_users lists the course\'s learners', function () {
        $users = get_enrolled_users(context_course::instance(suite_course()->id));
        foreach ($users as $u) { if ($u->username === 'pdp.suite.api') { return true; } }
        return 'the enrolled learner is not listed';
    });
    break;

case 'delete_user':
    check('delete_user deletes a user', function () {
        global $DB;
        $u = gen()->create_user(['username' => 'pdp.suite.del', 'email' => 'pdp.suite.del@example.kz']);
        delete_user($u);
        return (int)$DB->get_field('user', 'deleted', ['id' => $u->id]) === 1;
    });
    break;

case 'purge_caches':
    check('purge_caches', function () { purge_caches(); return true; });
    break;

case 'restricted':   // restricted USERNAME PASSWORD ID: a learner pdp.restrict_subject restricted
    // The learner's row may be invisible to Moodle now; the suite checks from
    // outside (run.sh) that nothing of theirs changed.
    $u = $DB->get_record('user', ['id' => (int)$args[2]]);
    if (!$u) {
        echo "# the restricted learner's mdl_user row is not visible to Moodle\n";
        $u = (object)['id' => (int)$args[2], 'username' => $args[0], 'auth' => 'manual', 'deleted' => 0,
                      'email' => '', 'idnumber' => '', 'picture' => 0, 'mnethostid' => $CFG->mnet_localhost_id];
    }
    $pattern = '/restrict/i';
    $nochange = function () { return true; };
    // Under an ordinary purpose the restricted learner's row is hidden, so
    // Moodle refuses the login as for an unknown user (doc/consent.md).
    check('a restricted learner cannot log in (hidden from the ordinary purpose; Moodle refuses the login)', function () use ($args) {
        $reason = null;
        $r = authenticate_user_login($args[0], $args[1], false, $reason);
        return $r === false ? true : 'login succeeded (reason ' . var_export($reason, true) . ')';
    });
    expect_error('UPDATE of a restricted learner\'s row fails loudly', $pattern, function () use ($DB, $u) {
        $DB->set_field('user', 'city', 'Suite-city', ['id' => $u->id]);
    }, $nochange);
    expect_error('DELETE of a restricted learner\'s enrolments fails loudly', $pattern, function () use ($DB, $u) {
        $DB->delete_records('user_enrolments', ['userid' => $u->id]);
    }, $nochange);
    // delete_user reads the account first; hidden, it is refused with
    // Moodle's own failure (false), never reported as done.
    check('delete_user of a restricted learner is refused (returns false), not reported as done', function () use ($u) {
        $r = delete_user($u);
        return $r === false ? true : 'delete_user returned ' . var_export($r, true);
    });
    break;

default:
    echo "not ok - unknown action $action\n";
    exit(1);
}
exit(0);
