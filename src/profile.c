/*-------------------------------------------------------------------------
 * profile.c
 *	  Reads an LMS profile shipped with pdp_ext (pdp.apply_profile).
 *
 * Profiles are JSON files installed by "make install" into
 * SHAREDIR/extension/pdp_ext_profiles/NAME.json (doc/profiles.md).  Only a
 * plain name is accepted, so no caller can make the server read any other
 * file; the share directory is the running server's own (relocatable
 * installations included), found the way PostgreSQL finds extension scripts.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"

PG_FUNCTION_INFO_V1(pdp_profile_source);

/* Largest profile file read: far above any real profile, far below memory limits. */
#define PDP_PROFILE_MAX_BYTES (8 * 1024 * 1024)

/*
 * pdp._profile_source(name text) RETURNS text: the profile file's text.
 */
Datum
pdp_profile_source(PG_FUNCTION_ARGS)
{
	char	   *name;
	char		sharepath[MAXPGPATH];
	char	   *path;
	FILE	   *f;
	StringInfoData buf;
	char		chunk[8192];
	size_t		n;
	size_t		len;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("profile name must not be null")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	len = strlen(name);
	if (len < 1 || len > 63 || strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a profile name is 1 to 63 lower-case letters, digits or underscores"),
				 errhint("Profiles are the files SHAREDIR/extension/pdp_ext_profiles/NAME.json, e.g. pdp.apply_profile('moodle').")));

	get_share_path(my_exec_path, sharepath);
	path = psprintf("%s/extension/pdp_ext_profiles/%s.json", sharepath, name);
	f = AllocateFile(path, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno == ENOENT)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("no profile named \"%s\" is installed", name),
					 errhint("Profiles are the files SHAREDIR/extension/pdp_ext_profiles/NAME.json that \"make install\" installs.")));
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open profile \"%s\": %m", name)));
	}
	initStringInfo(&buf);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
	{
		if (buf.len + n > PDP_PROFILE_MAX_BYTES)
		{
			FreeFile(f);
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("profile \"%s\" is larger than %d bytes", name, PDP_PROFILE_MAX_BYTES)));
		}
		appendBinaryStringInfo(&buf, chunk, n);
	}
	if (ferror(f))
	{
		FreeFile(f);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read profile \"%s\": %m", name)));
	}
	FreeFile(f);
	/* The text must be valid in the database encoding (profiles are UTF-8). */
	pg_verifymbstr(buf.data, buf.len, false);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf.data, buf.len));
}
