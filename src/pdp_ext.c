/*-------------------------------------------------------------------------
 * pdp_ext.c
 *	  Module entry point: settings and the hooks that tie them together.
 *
 * pdp_ext works whether it is loaded on first use or preloaded with
 * shared_preload_libraries; preloading is recommended so that the pdp.*
 * settings are known from the first statement of every session.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include <limits.h>

#include "fmgr.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/guc.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static emit_log_hook_type prev_emit_log_hook = NULL;

char	   *pdp_key_file = NULL;
char	   *pdp_purpose = NULL;
bool		pdp_allow_special_categories = false;
bool		pdp_erasure_in_progress = false;

/*
 * The key file path must be absolute: a relative path would be resolved
 * against the data directory, and keys must live outside it.
 */
static bool
pdp_check_key_file(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || (*newval)[0] == '\0')
		return true;
	if (!is_absolute_path(*newval))
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("\"pdp.key_file\" must be an absolute path outside the data directory.");
		return false;
	}
	return true;
}

/* Any (re)assignment, including a reload, makes every backend re-read keys. */
static void
pdp_assign_key_file(const char *newval, void *extra)
{
	pdp_keys_mark_stale();
}

/*
 * Personal values must not reach the server log.  pdp_ext's own messages
 * never contain them, but PostgreSQL logs the text of a failing statement
 * (log_min_error_statement), and a failing call such as
 * pdp.grant_consent('<e-mail>', ...) carries the value in that text.  So
 * the statement is hidden for every error of a statement that calls pdp_ext
 * or fails inside it, and integrity-violation details ("Key (id)=(42)")
 * raised inside pdp_ext are dropped.  Loaded with shared_preload_libraries
 * this covers every session; otherwise from a session's first use.
 */
static void
pdp_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel >= ERROR)
	{
		bool		in_pdp = edata->context != NULL && strstr(edata->context, "pdp.") != NULL;
		bool		calls_pdp = debug_query_string != NULL && strstr(debug_query_string, "pdp.") != NULL;

		if (in_pdp || calls_pdp)
			edata->hide_stmt = true;
		if (in_pdp && ERRCODE_TO_CATEGORY(edata->sqlerrcode) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION)
		{
			edata->detail = NULL;
			edata->detail_log = NULL;
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

void
_PG_init(void)
{
	DefineCustomStringVariable("pdp.key_file",
							   "Path of the file holding pdp_ext's versioned master keys.",
							   "The file must be outside the data directory and readable by its owner only.",
							   &pdp_key_file,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   pdp_check_key_file,
							   pdp_assign_key_file,
							   NULL);

	DefineCustomStringVariable("pdp.purpose",
							   "Why this session processes personal data.",
							   "Rows of tables protected by pdp_ext are visible only for a declared purpose the role may declare.",
							   &pdp_purpose,
							   "",
							   PGC_USERSET,
							   0,
							   pdp_check_purpose,
							   NULL,
							   NULL);

	DefineCustomBoolVariable("pdp.allow_special_categories",
							 "Whether special categories of personal data may be declared.",
							 "Health, religion, political views, biometrics and the like (GDPR Art. 9); off by default.",
							 &pdp_allow_special_categories,
							 false,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);

	DefineCustomIntVariable("pdp.visibility_memory",
							"The most memory one backend uses for consent and restriction sets.",
							"A statement that reads many rows of a protected table reads the declared purpose's "
							"consents once into a set; a set that would need more than this is not built, and "
							"the statement probes the index for each subject instead.",
							&pdp_visibility_memory_kb,
							8192,
							0,
							1048576,
							PGC_USERSET,
							GUC_UNIT_KB,
							NULL, NULL, NULL);

	MarkGUCPrefixReserved("pdp");

	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = pdp_emit_log_hook;
}
