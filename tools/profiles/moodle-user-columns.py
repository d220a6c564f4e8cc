#!/usr/bin/env python3
"""Derive the "subject_columns" section of profiles/moodle.json from Moodle's
db/install.xml files (run at profile-writing time, never at install time).

    tools/profiles/moodle-user-columns.py MOODLE_SOURCE_DIR [PREFIX] > columns.json

A column names a user when install.xml declares a foreign key to "user", or
when it is an int field whose name Moodle uses for users (userid, usermodified,
grader, ...).  Each gets an erase action by the rule documented in
doc/profiles.md: the user's OWN columns (userid, useridfrom, ...) delete the
row, staff/actor columns (usermodified, grader, loggeduser, ...) set 0, as
Moodle's privacy API does.  The output is a proposal: the reviewed profile
file is the data, and exceptions are edited there by hand (OVERRIDES below
records the ones made for Moodle 4.3)."""
import glob
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

OWN = {'userid', 'user', 'useridfrom', 'useridto', 'requesteduserid', 'blockeduserid',
       'contactid', 'recipientid', 'requester', 'tiuserid',
       'privatereplyto'}   # a private reply to the erased user goes: 0 would make it public
STAFF = {'usermodified', 'usercreated', 'loggeduser', 'realuserid', 'relateduserid', 'reviewerid',
         'modifierid', 'createdby', 'modifiedby', 'requestedby', 'grader', 'creatorid', 'authorid',
         'actionuserid', 'owneruserid', 'userviewas', 'importer', 'raterid', 'issuerid', 'gradeoverby',
         'gradinggradeoverby', 'ownerid', 'assessorid', 'teacher', 'reviewer', 'approvedby', 'dpo', 'actor',
         'allocatedmarker', 'overrideby'}
NAME = re.compile(r'^(' + '|'.join(sorted(OWN | STAFF)) + r')$')
# Tables where "userid" is the author of something shared (course content,
# site configuration), not the user's own record: cut the link instead.
OVERRIDES = {
    ('files', 'userid'): 'set_value', ('wiki_pages', 'userid'): 'set_value',
    ('wiki_versions', 'userid'): 'set_value', ('adminpresets', 'userid'): 'set_value',
    ('adminpresets_app', 'userid'): 'set_value', ('tool_monitor_rules', 'userid'): 'set_value',
    ('event', 'userid'): 'delete', ('search_simpledb_index', 'owneruserid'): 'delete',
    ('notifications', 'useridfrom'): 'set_value',   # the sender (a teacher, the system) of a learner's notification
}


def main():
    src = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) > 2 else 'mdl_'
    found = {}
    for f in sorted(glob.glob(os.path.join(src, '**', 'db', 'install.xml'), recursive=True)):
        root = ET.parse(f).getroot()
        for t in root.iter('TABLE'):
            tname = t.get('NAME')
            fk = set()
            for k in t.iter('KEY'):
                if k.get('TYPE') == 'foreign' and k.get('REFTABLE') == 'user':
                    fk.update(c.strip() for c in k.get('FIELDS').split(','))
            for fld in t.iter('FIELD'):
                c = fld.get('NAME')
                if fld.get('TYPE') != 'int' or not (c in fk or NAME.match(c)):
                    continue
                action = OVERRIDES.get((tname, c)) or ('delete' if c in OWN else 'set_value')
                found[(tname, c)] = action
    found[('user', 'id')] = 'delete'
    out = []
    for (t, c), a in sorted(found.items()):
        e = {'table': prefix + t, 'column': c, 'erase': a}
        if a == 'set_value':
            e['value'] = '0'
        out.append(e)
    json.dump(out, sys.stdout, indent=None, ensure_ascii=False)
    print()


if __name__ == '__main__':
    main()
