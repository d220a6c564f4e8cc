/*-------------------------------------------------------------------------
 * pdp_ext.h
 *	  Declarations shared by pdp_ext's server-side files.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_EXT_H
#define PDP_EXT_H

#include "postgres.h"

#include "fmgr.h"
#include "datatype/timestamp.h"
#include "utils/guc.h"

#include "keyfile.h"

/* Settings (pdp_ext.c) */
extern char *pdp_key_file;
extern char *pdp_purpose;
extern bool pdp_allow_special_categories;
extern bool pdp_require_transaction_purpose;

/*
 * Set by pdp.erase_subject while it works, so that erasure may delete rows
 * of restricted subjects (restriction does not bar erasure).  True only
 * while an erasure runs: it is cleared when erasure ends, when the
 * subtransaction that set it aborts, and at the end of the transaction.
 */
extern bool pdp_erasure_in_progress;

/*
 * While pdp._exec_as_owner runs a statement on a table whose owner is
 * subject to row-level security (FORCE), that table's OID: pdp's own row
 * test then shows every row, as it did when pdp ran as a superuser
 * (owner.c).  InvalidOid otherwise.
 */
extern Oid	pdp_owner_statement_relid;

/* Flags scoped to the subtransaction that set them (scoped.c) */
extern void pdp_scoped_set(bool *flag);
extern void pdp_scoped_clear(bool *flag);

/* Pseudonyms (pseudonym.c) */
extern Datum pdp_pseudonym_for_audit(FunctionCallInfo fcinfo, text *subject);

/* Audit trail (audit.c) */
extern void pdp_audit_reversal(const char *function);
extern Oid	pdp_function_owner(Oid fnoid);
extern int64 pdp_audit_seal_pending(int64 max_entries);
extern void pdp_audit_hash_entry(const unsigned char *prev, Size prevlen, int64 seq, int64 entry_id,
								 TimestampTz at, int nfields, const char *const *fields,
								 const uint32 *lens, unsigned char out[32]);

/* The keyed chain, anchors and the JSON log line (audit_chain.c) */
extern bool pdp_audit_log_json;
struct PdpKeyed;
extern void pdp_audit_mac_compute(struct PdpKeyed *k, const unsigned char *prev_mac, uint64 seq,
								  const unsigned char *hash, unsigned char out[32]);

/* Durable audit entries and the audit worker (audit_durable.c) */
extern void pdp_audit_durable_init(void);
extern void pdp_audit_request_seal(void);
extern int64 pdp_audit_durable(const char *action, const char *object,
							   const char *subject_pseudonym, const char *details);
extern bool pdp_audit_durable_async(const char *role, const char *session_role, const char *action,
									const char *object, const char *details, int64 rows, int64 returned, bool wait);
extern bool pdp_audit_read_buffered(const char *role, const char *session_role, const char *object,
									const char *details, int64 rows, int64 returned, bool wait);
extern bool pdp_audit_unavailable(void);

/* Read-access logging (audit_reads.c) */
extern void pdp_audit_reads_init(void);

/* Masked views' rule failure counters (rule_failures.c) */
extern void pdp_rule_failures_init(void);

/* Declared purpose (consent.c) */
#define PURPOSE_VISIBLE		1	/* a purpose the role may declare is declared */
#define PURPOSE_NEEDS_CONSENT 2
#define PURPOSE_EXEMPT		4	/* restricted subjects stay visible */
#define PURPOSE_MAINTENANCE	8	/* restricted subjects' rows may be changed; use is audited */
extern bool pdp_check_purpose(char **newval, void **extra, GucSource source);
extern void pdp_assign_purpose(const char *newval, void *extra);
extern int	pdp_statement_flags(bool notice);
extern Oid	pdp_relation_oid(const char *name);
extern void pdp_audit_maintenance_use(void);

/* The running query (target.c) */
extern void pdp_target_init(void);
extern bool pdp_row_test_on_write_target(FunctionCallInfo fcinfo);

/* Log hiding (pdp_ext.c): hot functions left out of the fmgr hook note themselves. */
extern void pdp_note_pdp_ran(void);
extern void pdp_require_pdp_caller(const char *function);

/* Row visibility (visibility.c) */
extern int	pdp_visibility_memory_kb;
extern void pdp_visibility_init(void);

/* retention.c */
extern double pdp_purge_max_share;

/* Keyring (keys.c) */
extern void pdp_keys_mark_stale(void);
extern void *pdp_secret_memory(size_t size, const char *what, bool *logged);
extern uint64 pdp_keyring_generation(void);
extern const pdp_key *pdp_active_key(void);
extern const pdp_key *pdp_key_by_version(uint16 version);
extern int	pdp_key_count(void);
extern const pdp_key *pdp_key_at(int i);
extern void pdp_derive_subkey(const pdp_key *key, const char *label,
							  const char *domain, size_t domain_len,
							  unsigned char out[PDP_KEY_BYTES]);

/* Subjects (subject.c) */
extern bool pdp_subject_canonical_form(const char *s, size_t len, char **out, size_t *out_len);
extern int	pdp_subject_kinds(void);

/* Key file checks shared with the subject key store (keys.c) */
extern bool pdp_fd_in_data_directory(int fd, const char *path);

/* Crypto-shredding (shred.c) */
extern text *pdp_shred_seal(Oid extowner, const char *subject, size_t subject_len, text *value);
extern bool pdp_shred_looks_sealed(text *value);
extern bool pdp_shred_canonical(Oid extowner, const char *s, size_t len, char **out, size_t *out_len);
extern bool pdp_shred_is_sealed_for(Oid extowner, const char *subject, size_t subject_len, text *value);
extern char *pdp_shred_subject_column(Oid extowner, Oid relid);

#endif							/* PDP_EXT_H */
