/*-------------------------------------------------------------------------
 * audit_chain.c
 *	  The keyed part of the audit chain: the MAC that only the holder of the
 *	  key file can compute, the published anchors (server log and an anchor
 *	  file outside the data directory), and the JSON line per entry for a
 *	  SIEM (pdp.audit_log_json).
 *
 * Every seal carries, besides its SHA-256 chain hash (which anyone can
 * recompute), a MAC
 *
 *   mac(n) = HMAC-SHA-256(K_audit, seq(n) || hash(n) || mac(n-1))
 *
 * under a subkey derived from the key file with HKDF and the label
 * "audit_chain" (keys.c), never the master key itself.  Rewriting the
 * tables without the key file breaks verification.  The subkey lives in a
 * per-call-site OpenSSL context (keyed.c); it never reaches SQL, a log line
 * or an error message.  Only pdp_ext's own functions may call the MAC
 * function (pdp_require_pdp_caller), so no role can use it as an oracle.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miscadmin.h"
#include "lib/stringinfo.h"
#include "storage/fd.h"
#include "utils/builtins.h"

#include "keyed.h"
#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_audit_mac);
PG_FUNCTION_INFO_V1(pdp_audit_key_version);
PG_FUNCTION_INFO_V1(pdp_audit_log_line);
PG_FUNCTION_INFO_V1(pdp_audit_anchor_file_check);
PG_FUNCTION_INFO_V1(pdp_audit_anchor_file_append);
PG_FUNCTION_INFO_V1(pdp_audit_anchor_file_read);

bool		pdp_audit_log_json = false;

#define ANCHOR_FILE_HEADER "# pdp_ext audit anchors: seq entry_id at hash mac key_version\n"

/*
 * The MAC of one seal into out[32]: HMAC-SHA-256 under k (the audit subkey
 * of a key version) of seq || hash || a presence byte || prev_mac (prev_mac
 * NULL: the first keyed seal).  Shared by pdp._audit_mac (verification) and
 * the sealer (audit_seal.c).
 */
void
pdp_audit_mac_compute(PdpKeyed *k, const unsigned char *prev_mac, uint64 seq,
					  const unsigned char *hash, unsigned char out[32])
{
	unsigned char msg[8 + 32 + 1 + 32];
	Size		len;

	for (int i = 7; i >= 0; i--)
	{
		msg[i] = (unsigned char) seq;
		seq >>= 8;
	}
	len = 8;
	memcpy(msg + len, hash, 32);
	len += 32;
	msg[len++] = prev_mac == NULL ? 0 : 1;
	if (prev_mac != NULL)
	{
		memcpy(msg + len, prev_mac, 32);
		len += 32;
	}
	pdp_keyed_hmac(k, msg, len, out);
	pdp_cleanse(msg, sizeof(msg));
}

/*
 * pdp._audit_mac(prev_mac bytea, seq bigint, hash bytea, key_version integer)
 * RETURNS bytea: the seal's MAC under the audit subkey of that key version.
 * prev_mac NULL: the first keyed seal (after the legacy segment or none).
 */
Datum
pdp_audit_mac(PG_FUNCTION_ARGS)
{
	uint64		seq;
	bytea	   *hash;
	int32		version;
	PdpKeyed   *k;
	unsigned char out[32];
	bytea	   *result;

	pdp_require_pdp_caller("pdp._audit_mac");
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit MAC arguments must not be null")));
	seq = (uint64) PG_GETARG_INT64(1);
	hash = PG_GETARG_BYTEA_PP(2);
	version = PG_GETARG_INT32(3);
	if (VARSIZE_ANY_EXHDR(hash) != 32 ||
		(!PG_ARGISNULL(0) && VARSIZE_ANY_EXHDR(PG_GETARG_BYTEA_PP(0)) != 32))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit chain hashes and MACs have 32 bytes")));
	if (version < 1 || version > 65535)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version %d is out of range", version)));

	k = pdp_keyed_get(fcinfo, PDP_KEYED_HMAC, "audit_chain", "", 0, (uint16) version);
	pdp_audit_mac_compute(k, PG_ARGISNULL(0) ? NULL : (unsigned char *) VARDATA_ANY(PG_GETARG_BYTEA_PP(0)),
						  seq, (unsigned char *) VARDATA_ANY(hash), out);
	result = (bytea *) palloc(VARHDRSZ + 32);
	SET_VARSIZE(result, VARHDRSZ + 32);
	memcpy(VARDATA(result), out, 32);
	pdp_cleanse(out, sizeof(out));
	PG_RETURN_BYTEA_P(result);
}

/*
 * pdp._audit_key_version() RETURNS integer: the active key's version, the
 * one new seals are made with.  Raises (the key file's error) without a key.
 */
Datum
pdp_audit_key_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32((int32) pdp_active_key()->version);
}

/*
 * pdp._audit_log_line(line text, json boolean) RETURNS boolean: writes the
 * line to the server log as one LOG line (no context, no statement).  A
 * JSON entry line (json true) is written only with pdp.audit_log_json on,
 * for a syslog or journald shipper to forward to a SIEM; an anchor line
 * always.  Returns whether it wrote.
 */
Datum
pdp_audit_log_line(PG_FUNCTION_ARGS)
{
	bool		json = PG_ARGISNULL(1) ? true : PG_GETARG_BOOL(1);

	pdp_require_pdp_caller("pdp._audit_log_line");
	if ((json && !pdp_audit_log_json) || PG_ARGISNULL(0))
		PG_RETURN_BOOL(false);
	ereport(LOG,
			(errmsg_internal("%s %s", json ? "pdp_audit" : "pdp_audit_anchor",
							 text_to_cstring(PG_GETARG_TEXT_PP(0))),
			 errhidestmt(true),
			 errhidecontext(true)));
	PG_RETURN_BOOL(true);
}

/*
 * Check an anchor file's path: absolute, its directory exists, outside the
 * data directory, not the key file, and (if the file exists) a regular file
 * that starts with the anchor header, so no other file can be appended to.
 * Returns the resolved path.
 */
static char *
anchor_file_resolve(const char *path)
{
	char		dir[PATH_MAX];
	char		real_dir[PATH_MAX];
	char		real_data[PATH_MAX];
	char	   *slash;
	char	   *resolved;
	size_t		n;
	struct stat st;

	if (path[0] != '/' || strlen(path) >= PATH_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit anchor file must be given as an absolute path")));
	strlcpy(dir, path, sizeof(dir));
	slash = strrchr(dir, '/');
	if (slash[1] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit anchor file must name a file, not a directory")));
	*slash = '\0';
	if (realpath(dir[0] ? dir : "/", real_dir) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FILE),
				 errmsg("the directory of the audit anchor file does not exist"),
				 errhint("Create the directory, writable by the database server's user.")));
	resolved = psprintf("%s/%s", strcmp(real_dir, "/") == 0 ? "" : real_dir, slash + 1);
	if (DataDir == NULL || realpath(DataDir, real_data) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not resolve the data directory")));
	n = strlen(real_data);
	if (strncmp(resolved, real_data, n) == 0 && (resolved[n] == '/' || resolved[n] == '\0'))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the audit anchor file must be outside the data directory"),
				 errdetail("An anchor kept in the data directory travels, and can be rewritten, with the data it vouches for."),
				 errhint("Choose a file on another file system, or one that is shipped elsewhere.")));
	if (pdp_key_file != NULL && pdp_key_file[0] != '\0')
	{
		char		real_key[PATH_MAX];

		if (realpath(pdp_key_file, real_key) != NULL && strcmp(real_key, resolved) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the audit anchor file must not be the key file")));
	}
	if (lstat(resolved, &st) == 0)
	{
		char		head[sizeof(ANCHOR_FILE_HEADER)];
		int			fd;
		ssize_t		r;

		if (!S_ISREG(st.st_mode))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the audit anchor file exists and is not a regular file")));
		fd = open(resolved, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not open the audit anchor file: %m")));
		r = read(fd, head, sizeof(head) - 1);
		close(fd);
		if (r != (ssize_t) (sizeof(head) - 1) || memcmp(head, ANCHOR_FILE_HEADER, sizeof(head) - 1) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the audit anchor file exists and is not a pdp_ext anchor file"),
					 errdetail("pdp_ext appends only to a file it created (its first line names it)."),
					 errhint("Name a new file; pdp_ext creates it.")));
	}
	return resolved;
}

/* pdp._audit_anchor_file_check(path text) RETURNS text: the resolved path, or an error. */
Datum
pdp_audit_anchor_file_check(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(anchor_file_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)))));
}

/*
 * pdp._audit_anchor_file_append(path text, line text) RETURNS void: appends
 * one line to the anchor file (creating it, mode 0600, with its header) and
 * flushes it to disk.
 */
Datum
pdp_audit_anchor_file_append(PG_FUNCTION_ARGS)
{
	char	   *path;
	char	   *line;
	int			fd;
	bool		created = false;
	struct stat st;
	StringInfoData buf;

	pdp_require_pdp_caller("pdp._audit_anchor_file_append");
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("anchor file and line must not be null")));
	path = anchor_file_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	line = text_to_cstring(PG_GETARG_TEXT_PP(1));
	if (strchr(line, '\n') != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an anchor line must be one line")));
	created = lstat(path, &st) != 0;
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open the audit anchor file for appending: %m")));
	initStringInfo(&buf);
	if (created)
		appendStringInfoString(&buf, ANCHOR_FILE_HEADER);
	appendStringInfo(&buf, "%s\n", line);
	if (write(fd, buf.data, buf.len) != (ssize_t) buf.len || pg_fsync(fd) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write the audit anchor file: %m")));
	}
	close(fd);
	PG_RETURN_VOID();
}

/*
 * pdp._audit_anchor_file_read(path text) RETURNS text: the anchor file's
 * lines (NULL when it does not exist), for pdp.verify_audit_log.
 */
Datum
pdp_audit_anchor_file_read(PG_FUNCTION_ARGS)
{
	char	   *path;
	int			fd;
	struct stat st;
	char	   *buf;
	ssize_t		nread = 0;

	pdp_require_pdp_caller("pdp._audit_anchor_file_read");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	path = anchor_file_resolve(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT)
		PG_RETURN_NULL();
	if (fd < 0 || fstat(fd, &st) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read the audit anchor file: %m")));
	if (st.st_size > 256 * 1024 * 1024)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("the audit anchor file is larger than 256 MB"),
				 errhint("Rotate it: move it away (keep it), and the next anchor starts a new one.")));
	}
	buf = palloc(st.st_size + 1);
	while (nread < st.st_size)
	{
		ssize_t		r = read(fd, buf + nread, st.st_size - nread);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		nread += r;
	}
	close(fd);
	buf[nread] = '\0';
	PG_RETURN_TEXT_P(cstring_to_text_with_len(buf, nread));
}
