/*-------------------------------------------------------------------------
 * shred.c
 *	  Crypto-shredding: the column rule "shred" encrypts each value under a
 *	  key of its row's own subject, and erasing the subject destroys that
 *	  key, so that the subject's values in base backups, WAL archives and
 *	  dumps taken before the erasure can no longer be decrypted.
 *
 * Subject keys.  A subject's key for master key version v is
 *	  HKDF(master key v, "shred", salt || subject)
 * where salt is 32 random bytes kept in the subject key store, a file next
 * to the key file ("<pdp.key_file>.subjects", outside the data directory,
 * so no base backup, WAL segment or dump ever holds it).  The store maps
 * tag = HMAC(HKDF(master key v, "shred id"), subject) to the salt: it holds
 * no subject identifier, and neither it nor the key file alone gives a key.
 * Erasure removes the subject's entries (every version's tag), and with
 * them the only copy of the salt: no key material that survives the
 * erasure derives the subject's key again.
 *
 * The store file: a 16-byte header ("PDPSHRD1", the number of slots, a
 * power of two, and the number of entries, both big-endian), then the
 * slots, 64 bytes each (tag, salt; an all-zero tag is an empty slot): an
 * open-addressing hash table on the tag, at most half full, so a lookup
 * reads one or two blocks of slots.  A new subject's entry is written into
 * its slot in place, and the store is fsynced before the transaction that
 * shredded a value commits (one fsync per transaction, not per subject).
 * When the table would be more than half full, or to remove entries, the
 * whole store is written to a temporary file (twice as large when it
 * grows), fsynced, renamed over the store and the directory fsynced, so a
 * crash leaves the old store or the new one, never half of one; growing by
 * doubling keeps the rewrites' cost constant per subject on average.
 *
 * Locking: every writer of the store (appending, rewriting) holds an
 * exclusive flock() on "<store>.lock" for the whole read-modify-write;
 * readers take no lock (they read either the old file or the renamed new
 * one; appends only add records).
 *
 * Per-backend cache: derived subject keys, at most SHRED_CACHE_SLOTS, in
 * page-aligned memory excluded from core dumps and locked where allowed
 * (as the master keys, keys.c).  It is wiped when the key file is reloaded
 * and whenever the store file is replaced (its inode changes: every
 * removal rewrites it), so a key destroyed by another backend's erasure is
 * never used again after that erasure commits.
 *
 * Destruction is transactional: pdp._shred_erase_keys schedules the
 * subject, and the entries are removed when the transaction commits
 * (XACT_EVENT_PRE_COMMIT: a failure then aborts the transaction, so a
 * committed erasure receipt means the keys are gone).  A subtransaction
 * that aborts forgets what it scheduled.  PREPARE TRANSACTION is refused.
 *
 * Values: "pdps1." then base64url of version (2 bytes, big-endian), a
 * random 12-byte IV, the AES-256-GCM ciphertext and its 16-byte tag; the
 * associated data is "pdp_ext shred v1", a zero byte, the version and the
 * canonical subject, so a value moved to another subject's row does not
 * decrypt there.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "common/hashfn.h"

#include "codec.h"
#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_unshred);
PG_FUNCTION_INFO_V1(pdp_shred_erase_keys);
PG_FUNCTION_INFO_V1(pdp_subject_key_store_status);

#define SHRED_MAGIC			"PDPSHRD1"
#define SHRED_HEADER_BYTES	16
#define SHRED_RECORD_BYTES	64
#define SHRED_MIN_SLOTS		1024
#define SHRED_MAX_SLOTS		(16 * 1024 * 1024)	/* 1 GB of store, 8M subjects */
#define SHRED_PROBE_BATCH	8
#define SHRED_CACHE_SLOTS	4096
#define SHRED_CACHE_PROBES	8
#define SHRED_CACHE_SUBJECT_MAX 64	/* longer subjects are not cached */

#define SHRED_PREFIX		"pdps1."
#define SHRED_PREFIX_LEN	6
#define SHRED_OVERHEAD		(2 + PDP_GCM_IV_BYTES + PDP_GCM_TAG_BYTES)
#define SHRED_MAX_VALUE		(64 * 1024 * 1024)

static const char shred_aad_label[] = "pdp_ext shred v1";	/* with its NUL */

typedef struct ShredRecord
{
	unsigned char tag[32];
	unsigned char salt[32];
} ShredRecord;

typedef struct ShredStore
{
	int			fd;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	uint32		capacity;		/* slots, a power of two */
	uint32		count;			/* entries, as the header says */
} ShredStore;

static inline uint32
get_be32(const unsigned char *p)
{
	return ((uint32) p[0] << 24) | ((uint32) p[1] << 16) | ((uint32) p[2] << 8) | (uint32) p[3];
}

static inline void
put_be32(unsigned char *p, uint32 v)
{
	p[0] = (v >> 24) & 0xff;
	p[1] = (v >> 16) & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = v & 0xff;
}

typedef struct ShredCacheSlot
{
	bool		used;
	uint16		version;
	uint8		subject_len;
	char		subject[SHRED_CACHE_SUBJECT_MAX];
	unsigned char key[32];
} ShredCacheSlot;

typedef struct ShredCache
{
	ShredCacheSlot slots[SHRED_CACHE_SLOTS];
	/* the "shred id" subkey of the last version used */
	bool		idkey_valid;
	uint16		idkey_version;
	unsigned char idkey[32];
} ShredCache;

/*
 * The cache is checked against the store (one stat) once per statement:
 * a statement that started before another backend's erasure committed may
 * still read what it read so far, as its snapshot still shows the rows.
 */
static ShredCache *cache = NULL;
static uint64 cache_generation = 0;
static dev_t cache_dev = 0;
static ino_t cache_ino = 0;
static LocalTransactionId checked_lxid = InvalidLocalTransactionId;
static CommandId checked_cid = InvalidCommandId;
static TimestampTz checked_stmt = 0;

/* Subjects whose keys are destroyed at commit, with the subtransaction that scheduled each. */
typedef struct ShredPending
{
	unsigned char *tags;		/* the subject's tag under every key version */
	int			ntags;
	SubTransactionId owner;
} ShredPending;

static List *pending = NIL;		/* in TopTransactionContext */

/*
 * This database's shredding domain (pdp.shred_domain), read once: it is
 * bound into every subject's tag, so that two databases sharing a key file
 * and naming different people by the same identifier have different keys.
 */
#define SHRED_DOMAIN_LEN 32
static char shred_domain[SHRED_DOMAIN_LEN + 1];
static bool shred_domain_known = false;
/* Made by this backend's transaction: trusted only within it, until committed. */
static LocalTransactionId shred_domain_lxid = InvalidLocalTransactionId;
static bool sealed_in_xact = false; /* the store is fsynced before commit */
static bool callbacks_registered = false;

static void shred_register_callbacks(void);

/* ------------------------------------------------------------------------
 * The cache
 * ------------------------------------------------------------------------
 */

static void
cache_memory(void)
{
	static bool lock_refusal_logged = false;

	if (cache != NULL)
		return;
	cache = (ShredCache *) pdp_secret_memory(sizeof(ShredCache), "subject keys", &lock_refusal_logged);
}

static void
cache_wipe(void)
{
	if (cache != NULL)
		pdp_cleanse(cache, sizeof(*cache));
}

static uint32
cache_home(uint16 version, const char *subject, size_t len)
{
	return (hash_bytes((const unsigned char *) subject, (int) len) ^ version) % SHRED_CACHE_SLOTS;
}

static bool
cache_get(uint16 version, const char *subject, size_t len, unsigned char key[32])
{
	uint32		h;

	if (len > SHRED_CACHE_SUBJECT_MAX)
		return false;
	h = cache_home(version, subject, len);
	for (int i = 0; i < SHRED_CACHE_PROBES; i++)
	{
		ShredCacheSlot *s = &cache->slots[(h + i) % SHRED_CACHE_SLOTS];

		if (!s->used)
			return false;
		if (s->version == version && s->subject_len == len && memcmp(s->subject, subject, len) == 0)
		{
			memcpy(key, s->key, 32);
			return true;
		}
	}
	return false;
}

/*
 * Bounded: a subject may sit in any of the SHRED_CACHE_PROBES slots from
 * its home slot (nothing is ever emptied but by a full wipe, so a lookup
 * stops at the first empty one); when all are taken, one of them, in turn,
 * is overwritten and so forgotten.
 */
static void
cache_put(uint16 version, const char *subject, size_t len, const unsigned char key[32])
{
	static uint32 victim = 0;
	uint32		h;
	ShredCacheSlot *s;

	if (len > SHRED_CACHE_SUBJECT_MAX)
		return;
	h = cache_home(version, subject, len);
	s = &cache->slots[(h + (victim++ % SHRED_CACHE_PROBES)) % SHRED_CACHE_SLOTS];
	for (int i = 0; i < SHRED_CACHE_PROBES; i++)
	{
		ShredCacheSlot *t = &cache->slots[(h + i) % SHRED_CACHE_SLOTS];

		if (!t->used)
		{
			s = t;
			break;
		}
	}
	s->used = true;
	s->version = version;
	s->subject_len = (uint8) len;
	memcpy(s->subject, subject, len);
	memcpy(s->key, key, 32);
}

/* ------------------------------------------------------------------------
 * The store file
 * ------------------------------------------------------------------------
 */

/* "<pdp.key_file>.subjects"; palloc'd.  Refused without a key file. */
static char *
store_path(void)
{
	if (pdp_key_file == NULL || pdp_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("pdp_ext has no key file"),
				 errdetail("The setting \"pdp.key_file\" is empty; subject keys live next to the key file."),
				 errhint("Create one with tools/pdp-keygen, set \"pdp.key_file\" in postgresql.conf and reload.")));
	return psprintf("%s.subjects", pdp_key_file);
}

static void
store_malformed(ShredStore *st, const char *path, const char *detail)
{
	if (st->fd >= 0)
		close(st->fd);
	st->fd = -1;
	ereport(ERROR,
			(errcode(ERRCODE_CONFIG_FILE_ERROR),
			 errmsg("subject key store \"%s\" is malformed", path),
			 errdetail("%s", detail),
			 errhint("Restore the store from its own backup, or see doc/keys.md.")));
}

/*
 * Open the store read-only and check it as keys.c checks the key file:
 * a regular file of the server's user or root, mode 0600 or 0400, outside
 * the data directory, with a valid header and size.  Returns false
 * (st->fd = -1) if it does not exist and missing_ok.
 */
static bool
store_open(const char *path, ShredStore *st, bool missing_ok)
{
	struct stat sb;
	unsigned char header[SHRED_HEADER_BYTES];

	st->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
	if (st->fd < 0)
	{
		if (errno == ENOENT && missing_ok)
			return false;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open subject key store \"%s\": %m", path)));
	}
	if (fstat(st->fd, &sb) != 0)
	{
		int			save_errno = errno;

		close(st->fd);
		st->fd = -1;
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat subject key store \"%s\": %m", path)));
	}
	if (!S_ISREG(sb.st_mode))
		store_malformed(st, path, "It is not a regular file.");
	if (sb.st_mode & (S_IRWXG | S_IRWXO | S_IXUSR | S_ISUID | S_ISGID | S_ISVTX))
		store_malformed(st, path, "Its mode must be 0600 or 0400.");
	if (sb.st_uid != geteuid() && sb.st_uid != 0)
		store_malformed(st, path, "It must be owned by the database server's user or root.");
	if (pdp_fd_in_data_directory(st->fd, path))
		store_malformed(st, path, "It is inside the data directory, so it would travel with every base backup.");
	if (sb.st_size < SHRED_HEADER_BYTES ||
		pg_pread(st->fd, header, SHRED_HEADER_BYTES, 0) != SHRED_HEADER_BYTES ||
		memcmp(header, SHRED_MAGIC, 8) != 0)
		store_malformed(st, path, "Its header is not that of a subject key store.");
	st->dev = sb.st_dev;
	st->ino = sb.st_ino;
	st->size = sb.st_size;
	st->capacity = get_be32(header + 8);
	st->count = get_be32(header + 12);
	if (st->capacity < SHRED_MIN_SLOTS || st->capacity > SHRED_MAX_SLOTS ||
		(st->capacity & (st->capacity - 1)) != 0 ||
		sb.st_size != SHRED_HEADER_BYTES + (off_t) st->capacity * SHRED_RECORD_BYTES)
		store_malformed(st, path, "Its size does not match its header.");
	return true;
}

/* Read n slots from slot i on (not wrapping) into recs. */
static void
store_read_slots(ShredStore *st, const char *path, uint32 i, uint32 n, ShredRecord *recs)
{
	size_t		want = (size_t) n * SHRED_RECORD_BYTES;
	size_t		got = 0;

	while (got < want)
	{
		ssize_t		r = pg_pread(st->fd, (char *) recs + got, want - got,
								 SHRED_HEADER_BYTES + (off_t) i * SHRED_RECORD_BYTES + got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
		{
			int			save_errno = errno;

			pdp_cleanse(recs, want);
			close(st->fd);
			st->fd = -1;
			errno = r < 0 ? save_errno : EIO;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read subject key store \"%s\": %m", path)));
		}
		got += r;
	}
}

static inline bool
slot_empty(const ShredRecord *r)
{
	static const unsigned char zero[32] = {0};

	return memcmp(r->tag, zero, 32) == 0;
}

static inline uint32
slot_home(const unsigned char tag[32], uint32 capacity)
{
	return get_be32(tag) & (capacity - 1);
}

/*
 * Find tag (linear probing from its home slot, SHRED_PROBE_BATCH slots per
 * read).  Found: its salt into salt, true.  Not found: false, and *free_slot
 * (if not NULL) is the empty slot where it would go.
 */
static bool
store_find(ShredStore *st, const char *path, const unsigned char tag[32],
		   unsigned char salt[32], uint32 *free_slot)
{
	ShredRecord batch[SHRED_PROBE_BATCH];
	uint32		i = slot_home(tag, st->capacity);
	uint32		seen = 0;
	bool		found = false;
	bool		done = false;

	while (!done && seen < st->capacity)
	{
		uint32		n = Min(SHRED_PROBE_BATCH, st->capacity - i);

		store_read_slots(st, path, i, n, batch);
		for (uint32 j = 0; j < n && !done; j++, seen++)
		{
			if (slot_empty(&batch[j]))
			{
				if (free_slot)
					*free_slot = i + j;
				done = true;
			}
			else if (memcmp(batch[j].tag, tag, 32) == 0)
			{
				memcpy(salt, batch[j].salt, 32);
				found = done = true;
			}
		}
		i = (i + n) & (st->capacity - 1);
	}
	pdp_cleanse(batch, sizeof(batch));
	if (!done)
		store_malformed(st, path, "It has no free slot.");
	return found;
}

/* Every entry of the store, palloc'd (the caller wipes and frees it); their number in *n. */
static ShredRecord *
store_read_all(ShredStore *st, const char *path, uint32 *n)
{
	ShredRecord *recs = palloc_extended((size_t) (st->capacity + 1) * sizeof(ShredRecord), MCXT_ALLOC_HUGE);
	uint32		kept = 0;

	store_read_slots(st, path, 0, st->capacity, recs);
	for (uint32 i = 0; i < st->capacity; i++)
	{
		if (slot_empty(&recs[i]))
			continue;
		if (kept != i)
		{
			recs[kept] = recs[i];
			pdp_cleanse(&recs[i], sizeof(ShredRecord));
		}
		kept++;
	}
	*n = kept;
	return recs;
}

static void
put_header(unsigned char header[SHRED_HEADER_BYTES], uint32 capacity, uint32 count)
{
	memcpy(header, SHRED_MAGIC, 8);
	put_be32(header + 8, capacity);
	put_be32(header + 12, count);
}

static void
write_all(int fd, const void *buf, size_t len, off_t off, const char *path)
{
	size_t		done = 0;

	while (done < len)
	{
		ssize_t		w = pg_pwrite(fd, (const char *) buf + done, len - done, off + done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
		{
			if (w == 0)
				errno = ENOSPC;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write subject key store \"%s\": %m", path)));
		}
		done += w;
	}
}

static void
fsync_or_error(int fd, const char *path)
{
	if (fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync subject key store \"%s\": %m", path)));
}

/* fsync the directory holding path, so a rename in it is durable. */
static void
fsync_parent(const char *path)
{
	char	   *dir = pstrdup(path);
	char	   *slash = strrchr(dir, '/');
	int			fd;

	if (slash == dir)
		slash[1] = '\0';
	else if (slash != NULL)
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY, 0);
	if (fd < 0 || fsync(fd) != 0)
	{
		int			save_errno = errno;

		if (fd >= 0)
			close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync the directory of subject key store \"%s\": %m", path)));
	}
	close(fd);
	pfree(dir);
}

/*
 * Replace the store with a table of recs[0..n): a temporary file, fsynced,
 * renamed over the store, the directory fsynced.  The table has room for
 * twice the entries (at least SHRED_MIN_SLOTS slots).  Caller holds the
 * store lock.
 */
static void
store_rewrite(const char *path, ShredRecord *recs, uint32 n)
{
	char	   *tmp = psprintf("%s.tmp", path);
	unsigned char header[SHRED_HEADER_BYTES];
	uint32		capacity = SHRED_MIN_SLOTS;
	ShredRecord *table;
	size_t		table_bytes;
	int			fd;

	while (capacity < SHRED_MAX_SLOTS && (uint64) n * 2 > capacity)
		capacity *= 2;
	if ((uint64) n * 2 > capacity)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("subject key store \"%s\" is full", path),
				 errdetail("It holds at most %u subject keys.", SHRED_MAX_SLOTS / 2)));
	table_bytes = (size_t) capacity * sizeof(ShredRecord);
	table = palloc_extended(table_bytes, MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	for (uint32 k = 0; k < n; k++)
	{
		uint32		i = slot_home(recs[k].tag, capacity);

		while (!slot_empty(&table[i]))
			i = (i + 1) & (capacity - 1);
		table[i] = recs[k];
	}
	put_header(header, capacity, n);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);
	if (fd < 0)
	{
		pdp_cleanse(table, table_bytes);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create subject key store \"%s\": %m", tmp),
				 errhint("The server's user must be able to write the key file's directory.")));
	}
	PG_TRY();
	{
		if (fchmod(fd, S_IRUSR | S_IWUSR) != 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not set the mode of subject key store \"%s\": %m", tmp)));
		write_all(fd, header, SHRED_HEADER_BYTES, 0, tmp);
		write_all(fd, table, table_bytes, SHRED_HEADER_BYTES, tmp);
		fsync_or_error(fd, tmp);
	}
	PG_CATCH();
	{
		pdp_cleanse(table, table_bytes);
		close(fd);
		unlink(tmp);
		PG_RE_THROW();
	}
	PG_END_TRY();
	pdp_cleanse(table, table_bytes);
	pfree(table);
	close(fd);
	if (rename(tmp, path) != 0)
	{
		int			save_errno = errno;

		unlink(tmp);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename \"%s\" to \"%s\": %m", tmp, path)));
	}
	fsync_parent(path);
	pfree(tmp);
}

/* Take the store's writer lock; returns the descriptor to close to release it. */
static int
store_lock(const char *path)
{
	char	   *lockpath = psprintf("%s.lock", path);
	int			fd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, S_IRUSR | S_IWUSR);

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open lock file \"%s\": %m", lockpath),
				 errhint("The server's user must be able to write the key file's directory.")));
	while (flock(fd, LOCK_EX) != 0)
	{
		if (errno == EINTR)
		{
			CHECK_FOR_INTERRUPTS();
			continue;
		}
		close(fd);
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not lock \"%s\": %m", lockpath)));
	}
	pfree(lockpath);
	return fd;
}

/* store_add: the store rewritten into a table twice as large, with rec (or a new store). */
static void
store_add_rewrite(ShredStore *st, bool exists, const char *path, const ShredRecord *rec)
{
	uint32		n = 0;
	ShredRecord *recs = exists ? store_read_all(st, path, &n) : palloc(sizeof(ShredRecord));

	recs[n++] = *rec;
	PG_TRY();
	{
		store_rewrite(path, recs, n);
	}
	PG_FINALLY();
	{
		pdp_cleanse(recs, (size_t) n * sizeof(ShredRecord));
		pfree(recs);
	}
	PG_END_TRY();
}

/*
 * store_add: rec written into its free slot, and the header's count.  Not
 * fsynced here: the transaction that shreds a value fsyncs the store before
 * it commits (shred_xact_callback), so one fsync covers a statement's new
 * subjects; a crash before that loses only keys no committed value uses.
 */
static void
store_add_in_place(ShredStore *st, const char *path, const ShredRecord *rec, uint32 slot)
{
	int			wfd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW, 0);
	unsigned char count[4];

	if (wfd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open subject key store \"%s\" for writing: %m", path)));
	put_be32(count, st->count + 1);
	PG_TRY();
	{
		write_all(wfd, rec, SHRED_RECORD_BYTES, SHRED_HEADER_BYTES + (off_t) slot * SHRED_RECORD_BYTES, path);
		write_all(wfd, count, 4, 12, path);
	}
	PG_FINALLY();
	{
		close(wfd);
	}
	PG_END_TRY();
}

/*
 * Add (tag, a new random salt) unless tag is there; the salt into salt.
 * Durable before the transaction commits.
 */
static void
store_add(const char *path, const unsigned char tag[32], unsigned char salt[32])
{
	int			lockfd;
	ShredStore	st;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot create a subject key during recovery"),
				 errhint("Write shredded columns on the primary.")));
	lockfd = store_lock(path);
	st.fd = -1;
	PG_TRY();
	{
		bool		exists = store_open(path, &st, true);
		uint32		slot = 0;

		if (!exists || !store_find(&st, path, tag, salt, &slot))
		{
			ShredRecord rec;

			if (!pdp_random_bytes(salt, 32))
				ereport(ERROR,
						(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
						 errmsg("could not generate a subject key"),
						 errdetail("OpenSSL's random generator failed.")));
			memcpy(rec.tag, tag, 32);
			memcpy(rec.salt, salt, 32);
			/* At most half full: probe sequences stay short. */
			if (!exists || (uint64) (st.count + 1) * 2 > st.capacity)
				store_add_rewrite(&st, exists, path, &rec);
			else
				store_add_in_place(&st, path, &rec, slot);
			pdp_cleanse(&rec, sizeof(rec));
		}
	}
	PG_FINALLY();
	{
		if (st.fd >= 0)
			close(st.fd);
		close(lockfd);
	}
	PG_END_TRY();
}

/* ------------------------------------------------------------------------
 * Subject keys
 * ------------------------------------------------------------------------
 */

/*
 * Read (or, with create, first make) this database's shredding domain, as
 * the extension's owner.  False when there is none and !create: nothing
 * was ever shredded in this database.
 */
static bool
shred_domain_get(Oid extowner, bool create)
{
	Oid			save_userid;
	int			save_sec_context;

	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;

	if (shred_domain_known &&
		(shred_domain_lxid == InvalidLocalTransactionId || shred_domain_lxid == lxid))
		return true;
	shred_domain_known = false;
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(extowner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (create &&
			SPI_execute("INSERT INTO pdp.shred_domain (domain) VALUES "
						"(pg_catalog.replace(pg_catalog.gen_random_uuid()::pg_catalog.text, '-', '')) "
						"ON CONFLICT DO NOTHING", false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not create the shredding domain");
		shred_domain_lxid = (create && SPI_processed > 0) ? lxid : InvalidLocalTransactionId;
		/* (not read-only: it must see the row just inserted) */
		if (SPI_execute("SELECT d.domain FROM pdp.shred_domain d", !create, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the shredding domain");
		if (SPI_processed == 1)
		{
			char	   *d = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

			if (d == NULL || strlen(d) != SHRED_DOMAIN_LEN)
				elog(ERROR, "malformed shredding domain");
			memcpy(shred_domain, d, SHRED_DOMAIN_LEN + 1);
			shred_domain_known = true;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return shred_domain_known;
}

/* tag = HMAC(HKDF(master key, "shred id"), domain || 0x00 || subject); the domain must be known. */
static void
subject_tag(const pdp_key *mk, const char *subject, size_t len, unsigned char tag[32])
{
	char	   *msg = palloc(SHRED_DOMAIN_LEN + 1 + len);
	bool		ok;

	if (!cache->idkey_valid || cache->idkey_version != mk->version)
	{
		pdp_derive_subkey(mk, "shred id", "", 0, cache->idkey);
		cache->idkey_version = mk->version;
		cache->idkey_valid = true;
	}
	Assert(shred_domain_known);
	memcpy(msg, shred_domain, SHRED_DOMAIN_LEN);
	msg[SHRED_DOMAIN_LEN] = '\0';
	memcpy(msg + SHRED_DOMAIN_LEN + 1, subject, len);
	ok = pdp_hmac_sha256(cache->idkey, 32, (const unsigned char *) msg, SHRED_DOMAIN_LEN + 1 + len, tag);
	pfree(msg);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute a subject key tag"),
				 errdetail("OpenSSL's HMAC failed.")));
}

static void
subject_derive(const pdp_key *mk, const unsigned char salt[32],
			   const char *subject, size_t len, unsigned char key[32])
{
	char	   *domain = palloc(32 + len);

	memcpy(domain, salt, 32);
	memcpy(domain + 32, subject, len);
	pdp_derive_subkey(mk, "shred", domain, 32 + len, key);
	pdp_cleanse(domain, 32 + len);
	pfree(domain);
}

/* The salt of tag in the store at path, if it is there. */
static bool
store_lookup(const char *path, const unsigned char tag[32], unsigned char salt[32])
{
	ShredStore	st;
	bool		found = false;

	st.fd = -1;
	if (!store_open(path, &st, true))
		return false;
	PG_TRY();
	{
		found = store_find(&st, path, tag, salt, NULL);
	}
	PG_FINALLY();
	{
		if (st.fd >= 0)
			close(st.fd);
	}
	PG_END_TRY();
	return found;
}

/*
 * The subject's key for master key version into key.  Without a store
 * entry: false, unless create, which adds one.  False as well when the key
 * file no longer holds the version.
 */
static bool
subject_key(Oid extowner, uint16 version, const char *subject, size_t len, bool create, unsigned char key[32])
{
	uint64		gen = pdp_keyring_generation();
	const pdp_key *mk = pdp_key_by_version(version);
	LocalTransactionId lxid = MyProc ? MyProc->lxid : InvalidLocalTransactionId;
	CommandId	cid = GetCurrentCommandId(false);
	TimestampTz stmt = GetCurrentStatementStartTimestamp();
	char	   *path;
	struct stat sb;
	bool		exists;
	unsigned char tag[32];
	unsigned char salt[32];
	bool		found = false;

	if (mk == NULL)
		return false;
	cache_memory();
	if (gen != cache_generation || lxid == InvalidLocalTransactionId ||
		lxid != checked_lxid || cid != checked_cid || stmt != checked_stmt)
	{
		/* Once per statement: is the store the one the cache was filled from? */
		path = store_path();
		exists = stat(path, &sb) == 0;
		if (!exists && errno != ENOENT)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat subject key store \"%s\": %m", path)));
		if (gen != cache_generation || !exists || sb.st_dev != cache_dev || sb.st_ino != cache_ino)
		{
			cache_wipe();
			cache_generation = gen;
			cache_dev = exists ? sb.st_dev : 0;
			cache_ino = exists ? sb.st_ino : 0;
		}
		checked_lxid = lxid;
		checked_cid = cid;
		checked_stmt = stmt;
		pfree(path);
	}
	if (cache_get(version, subject, len, key))
		return true;

	if (!shred_domain_get(extowner, create))
		return false;
	path = store_path();
	subject_tag(mk, subject, len, tag);
	found = store_lookup(path, tag, salt);
	if (!found)
	{
		if (!create)
			return false;
		store_add(path, tag, salt);
	}
	subject_derive(mk, salt, subject, len, key);
	pdp_cleanse(salt, sizeof(salt));
	/* Cached only under the store file it was read from (or, once written, is in). */
	if (stat(path, &sb) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat subject key store \"%s\": %m", path)));
	if (cache_ino == 0 || (sb.st_dev == cache_dev && sb.st_ino == cache_ino))
	{
		cache_dev = sb.st_dev;
		cache_ino = sb.st_ino;
		cache_put(version, subject, len, key);
	}
	else
	{
		/* Replaced meanwhile (grown, or an erasure): start again from the new file. */
		cache_wipe();
		cache_dev = sb.st_dev;
		cache_ino = sb.st_ino;
	}
	pfree(path);
	return true;
}

static size_t
shred_aad(unsigned char *aad, uint16 version, const char *subject, size_t len)
{
	memcpy(aad, shred_aad_label, sizeof(shred_aad_label));
	aad[sizeof(shred_aad_label)] = version >> 8;
	aad[sizeof(shred_aad_label) + 1] = version & 0xff;
	memcpy(aad + sizeof(shred_aad_label) + 2, subject, len);
	return sizeof(shred_aad_label) + 2 + len;
}

/*
 * pdp_subject_canonical_form as the extension's owner: it reads the
 * registry (pdp.subject_column), which writers and readers of a shredded
 * column may not read themselves.
 */
bool
pdp_shred_canonical(Oid extowner, const char *s, size_t len, char **out, size_t *out_len)
{
	Oid			save_userid;
	int			save_sec_context;
	volatile bool ok = false;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(extowner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		ok = pdp_subject_canonical_form(s, len, out, out_len);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	return ok;
}

/* Canonical subject of s[0..len) or an error naming no value. */
static void
canonical_or_error(const char *s, size_t len, char **out, size_t *out_len)
{
	if (!pdp_subject_canonical_form(s, len, out, out_len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid subject for the registered subject columns"),
				 errhint("Give the subject as a registered column holds it."),
				 errhidestmt(true)));
}

/*
 * Encrypt value under the subject's key (creating it on first use).
 * subject must be canonical.  Returns the "pdps1." text.
 */
text *
pdp_shred_seal(Oid extowner, const char *subject, size_t subject_len, text *value)
{
	size_t		vlen = VARSIZE_ANY_EXHDR(value);
	const pdp_key *mk = pdp_active_key();
	uint16		version = mk->version;
	unsigned char key[32];
	unsigned char *body;
	unsigned char *aad;
	size_t		aad_len;
	size_t		body_len = SHRED_OVERHEAD + vlen;
	size_t		text_len;
	text	   *result;

	if (vlen > SHRED_MAX_VALUE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too long to shred"),
				 errdetail("At most 64 MB are accepted."),
				 errhidestmt(true)));
	shred_register_callbacks();
	sealed_in_xact = true;
	if (!subject_key(extowner, version, subject, subject_len, true, key))
		elog(ERROR, "could not make a subject key");
	body = palloc(body_len);
	body[0] = version >> 8;
	body[1] = version & 0xff;
	aad = palloc(sizeof(shred_aad_label) + 2 + subject_len);
	aad_len = shred_aad(aad, version, subject, subject_len);
	if (!pdp_random_bytes(body + 2, PDP_GCM_IV_BYTES) ||
		!pdp_gcm_seal(key, body + 2, aad, aad_len,
					  (const unsigned char *) VARDATA_ANY(value), vlen,
					  body + 2 + PDP_GCM_IV_BYTES, body + 2 + PDP_GCM_IV_BYTES + vlen))
	{
		pdp_cleanse(key, sizeof(key));
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not shred value"),
				 errdetail("OpenSSL failed.")));
	}
	pdp_cleanse(key, sizeof(key));
	text_len = SHRED_PREFIX_LEN + PDP_BASE64URL_LEN(body_len);
	result = (text *) palloc(VARHDRSZ + text_len);
	SET_VARSIZE(result, VARHDRSZ + text_len);
	memcpy(VARDATA(result), SHRED_PREFIX, SHRED_PREFIX_LEN);
	pdp_base64url_encode(body, body_len, VARDATA(result) + SHRED_PREFIX_LEN);
	pfree(body);
	pfree(aad);
	return result;
}

/*
 * Decrypt a shredded value of the (canonical) subject: the plaintext, or
 * NULL when it is not a shredded value, its subject's key is gone, or it
 * does not authenticate (altered, or another subject's).
 */
static text *
shred_open(Oid extowner, const char *subject, size_t subject_len, const char *armour, size_t len)
{
	unsigned char *body;
	long		body_len;
	uint16		version;
	unsigned char key[32];
	unsigned char *aad;
	size_t		aad_len;
	size_t		plen;
	text	   *result;
	bool		ok;

	if (len < SHRED_PREFIX_LEN || memcmp(armour, SHRED_PREFIX, SHRED_PREFIX_LEN) != 0 ||
		len - SHRED_PREFIX_LEN > PDP_BASE64URL_LEN((size_t) SHRED_MAX_VALUE + SHRED_OVERHEAD))
		return NULL;
	body = palloc((len - SHRED_PREFIX_LEN) * 3 / 4 + 1);
	body_len = pdp_base64url_decode(armour + SHRED_PREFIX_LEN, len - SHRED_PREFIX_LEN, body);
	if (body_len < SHRED_OVERHEAD)
	{
		pfree(body);
		return NULL;
	}
	version = ((uint16) body[0] << 8) | body[1];
	if (version == 0 || !subject_key(extowner, version, subject, subject_len, false, key))
	{
		pfree(body);
		return NULL;
	}
	plen = body_len - SHRED_OVERHEAD;
	aad = palloc(sizeof(shred_aad_label) + 2 + subject_len);
	aad_len = shred_aad(aad, version, subject, subject_len);
	result = (text *) palloc(VARHDRSZ + plen);
	SET_VARSIZE(result, VARHDRSZ + plen);
	ok = pdp_gcm_open(key, body + 2, aad, aad_len, body + 2 + PDP_GCM_IV_BYTES, plen,
					  body + 2 + PDP_GCM_IV_BYTES + plen, (unsigned char *) VARDATA(result));
	pdp_cleanse(key, sizeof(key));
	pfree(aad);
	pfree(body);
	if (!ok)
	{
		pdp_cleanse(VARDATA(result), plen);
		pfree(result);
		return NULL;
	}
	return result;
}

/* Does value have a shredded value's form (not checked further)? */
bool
pdp_shred_looks_sealed(text *value)
{
	return VARSIZE_ANY_EXHDR(value) >= SHRED_PREFIX_LEN &&
		memcmp(VARDATA_ANY(value), SHRED_PREFIX, SHRED_PREFIX_LEN) == 0;
}

/* Is value already a shredded value of this (canonical) subject? */
bool
pdp_shred_is_sealed_for(Oid extowner, const char *subject, size_t subject_len, text *value)
{
	text	   *plain;

	if (VARSIZE_ANY_EXHDR(value) < SHRED_PREFIX_LEN ||
		memcmp(VARDATA_ANY(value), SHRED_PREFIX, SHRED_PREFIX_LEN) != 0)
		return false;
	plain = shred_open(extowner, subject, subject_len, VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	if (plain == NULL)
		return false;
	pdp_cleanse(VARDATA(plain), VARSIZE(plain) - VARHDRSZ);
	pfree(plain);
	return true;
}

/*
 * The name of the one registered subject column that holds the subject of
 * tbl's rows (pdp._shred_subject_column, which raises otherwise), read as
 * the extension's owner.  palloc'd in the caller's context.
 */
char *
pdp_shred_subject_column(Oid extowner, Oid relid)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		values[1];
	Oid			save_userid;
	int			save_sec_context;
	MemoryContext caller = CurrentMemoryContext;
	char	   *volatile col = NULL;

	values[0] = ObjectIdGetDatum(relid);
	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	SetUserIdAndSecContext(extowner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		bool		isnull;
		Datum		d;

		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (SPI_execute_with_args("SELECT pdp._shred_subject_column($1::pg_catalog.regclass)::pg_catalog.text",
								  1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
			elog(ERROR, "could not read the subject column");
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (!isnull)
			col = MemoryContextStrdup(caller, TextDatumGetCString(d));
		SPI_finish();
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
	}
	PG_END_TRY();
	if (col == NULL)
		elog(ERROR, "no subject column");
	return col;
}

/* ------------------------------------------------------------------------
 * Reading: pdp.unshred
 * ------------------------------------------------------------------------
 */

typedef struct UnshredGate
{
	Oid			userid;
	Oid			relid;
	AttrNumber	attnum;
	bool		allowed;
} UnshredGate;

/*
 * May the current user read column attnum of relid in clear?  If it may
 * SELECT the column, or SELECT a view that reads the column and calls this
 * function (a masked view) and whose owner may SELECT the column.
 */
static bool
unshred_allowed(Oid fnoid, Oid userid, Oid relid, AttrNumber attnum)
{
	Oid			argtypes[4] = {OIDOID, OIDOID, INT2OID, OIDOID};
	Datum		values[4];
	bool		allowed;
	bool		isnull;

	values[0] = ObjectIdGetDatum(userid);
	values[1] = ObjectIdGetDatum(relid);
	values[2] = Int16GetDatum(attnum);
	values[3] = ObjectIdGetDatum(fnoid);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(
							  "SELECT pg_catalog.has_column_privilege($1, $2, $3, 'SELECT') OR EXISTS ("
							  " SELECT 1 FROM pg_catalog.pg_depend d"
							  " JOIN pg_catalog.pg_rewrite w ON w.oid OPERATOR(pg_catalog.=) d.objid"
							  " JOIN pg_catalog.pg_class v ON v.oid OPERATOR(pg_catalog.=) w.ev_class"
							  " WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
							  " AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
							  " AND d.refobjid OPERATOR(pg_catalog.=) $2 AND d.refobjsubid OPERATOR(pg_catalog.=) $3"
							  " AND pg_catalog.has_table_privilege($1, v.oid, 'SELECT')"
							  " AND pg_catalog.has_column_privilege(v.relowner, $2, $3, 'SELECT')"
							  " AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend f"
							  "  WHERE f.classid OPERATOR(pg_catalog.=) d.classid AND f.objid OPERATOR(pg_catalog.=) d.objid"
							  "  AND f.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"
							  "  AND f.refobjid OPERATOR(pg_catalog.=) $4))",
							  4, argtypes, values, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not check the column privilege");
	allowed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) && !isnull;
	SPI_finish();
	return allowed;
}

/*
 * pdp.unshred(tbl regclass, col name, value text, subject text) RETURNS text
 *
 * The clear value of a shredded value of column col of tbl in the row of
 * subject, for a role that may read the column (directly or through a
 * masked view).  NULL when the subject's key was destroyed by erasure, or
 * the value is not one shredded for that subject: a masked view never fails
 * on what the table holds.
 */
Datum
pdp_unshred(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Name		col = PG_GETARG_NAME(1);
	text	   *value = PG_GETARG_TEXT_PP(2);
	text	   *subject = PG_GETARG_TEXT_PP(3);
	UnshredGate *gate = (UnshredGate *) fcinfo->flinfo->fn_extra;
	Oid			userid = GetUserId();
	AttrNumber	attnum;
	char	   *canon;
	size_t		canon_len;
	text	   *result;

	if (get_rel_name(relid) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	attnum = get_attnum(relid, NameStr(*col));
	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist", NameStr(*col), get_rel_name(relid))));
	if (gate == NULL || gate->userid != userid || gate->relid != relid || gate->attnum != attnum)
	{
		gate = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(UnshredGate));
		gate->userid = userid;
		gate->relid = relid;
		gate->attnum = attnum;
		gate->allowed = unshred_allowed(fcinfo->flinfo->fn_oid, userid, relid, attnum);
		fcinfo->flinfo->fn_extra = gate;
	}
	if (!gate->allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to read shredded column \"%s\"", NameStr(*col)),
				 errdetail("Only a role that may read the column, or a masked view of it, may read its values in clear."),
				 errhidestmt(true)));
	if (!pdp_shred_canonical(pdp_function_owner(fcinfo->flinfo->fn_oid),
							 VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), &canon, &canon_len))
		PG_RETURN_NULL();
	result = shred_open(pdp_function_owner(fcinfo->flinfo->fn_oid), canon, canon_len,
						VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value));
	pfree(canon);
	if (result == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(result);
}

/* ------------------------------------------------------------------------
 * Destruction: pdp._shred_erase_keys and the commit hook
 * ------------------------------------------------------------------------
 */

/* Tags of the subject under every key version in the file, palloc'd. */
static unsigned char *
all_tags(const char *subject, size_t len, int *ntags)
{
	int			n = pdp_key_count();
	unsigned char *tags = palloc(Max(n, 1) * 32);

	cache_memory();
	for (int i = 0; i < n; i++)
		subject_tag(pdp_key_at(i), subject, len, tags + 32 * i);
	*ntags = n;
	return tags;
}

static bool
tag_in(const unsigned char *tag, const unsigned char *tags, int ntags)
{
	for (int i = 0; i < ntags; i++)
		if (memcmp(tag, tags + 32 * i, 32) == 0)
			return true;
	return false;
}

/* destroy_pending: the store at path (open in st) without the pending subjects' entries. */
static void
destroy_in_store(ShredStore *st, const char *path)
{
	uint32		total;
	ShredRecord *recs = store_read_all(st, path, &total);

	PG_TRY();
	{
		uint32		n = total;
		ListCell   *lc;

		foreach(lc, pending)
		{
			ShredPending *p = (ShredPending *) lfirst(lc);
			uint32		kept = 0;

			for (uint32 i = 0; i < n; i++)
			{
				if (tag_in(recs[i].tag, p->tags, p->ntags))
					pdp_cleanse(&recs[i], sizeof(ShredRecord));
				else
					recs[kept++] = recs[i];
			}
			if (kept < n)
				pdp_cleanse(&recs[kept], (size_t) (n - kept) * sizeof(ShredRecord));
			n = kept;
		}
		if (n < total)
			store_rewrite(path, recs, n);
	}
	PG_FINALLY();
	{
		pdp_cleanse(recs, (size_t) total * sizeof(ShredRecord));
		pfree(recs);
	}
	PG_END_TRY();
}

/*
 * Remove every pending subject's entries from the store, in one rewrite.
 * Runs at PRE_COMMIT: an error aborts the transaction.
 */
static void
destroy_pending(void)
{
	char	   *path = store_path();
	int			lockfd = store_lock(path);
	ShredStore	st;

	st.fd = -1;
	PG_TRY();
	{
		if (store_open(path, &st, true))
			destroy_in_store(&st, path);
	}
	PG_FINALLY();
	{
		if (st.fd >= 0)
			close(st.fd);
		close(lockfd);
	}
	PG_END_TRY();
	/* This backend's cached keys go too (other backends see the new inode). */
	cache_wipe();
	cache_dev = 0;
	cache_ino = 0;
}

/*
 * Make the store's in-place additions durable: every key a value of this
 * transaction was shredded under reaches the disk before the value does.
 */
static void
store_fsync(void)
{
	char	   *path = store_path();
	int			fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW, 0);

	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open subject key store \"%s\": %m", path)));
	if (fsync(fd) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync subject key store \"%s\": %m", path)));
	}
	close(fd);
	pfree(path);
}

static void
shred_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			if (sealed_in_xact)
			{
				store_fsync();
				sealed_in_xact = false;
			}
			if (pending != NIL)
			{
				destroy_pending();
				pending = NIL;
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (sealed_in_xact)
			{
				store_fsync();
				sealed_in_xact = false;
			}
			if (pending != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that destroys subject keys"),
						 errhint("Erase subjects with shredded values outside two-phase transactions.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			pending = NIL;		/* freed with TopTransactionContext */
			sealed_in_xact = false;
			break;
		default:
			break;
	}
}

static void
shred_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		foreach(lc, pending)
		{
			ShredPending *p = (ShredPending *) lfirst(lc);

			if (p->owner == mySubid)
				pending = foreach_delete_current(pending, lc);
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, pending)
		{
			ShredPending *p = (ShredPending *) lfirst(lc);

			if (p->owner == mySubid)
				p->owner = parentSubid;
		}
	}
}

static void
shred_register_callbacks(void)
{
	if (!callbacks_registered)
	{
		RegisterXactCallback(shred_xact_callback, NULL);
		RegisterSubXactCallback(shred_subxact_callback, NULL);
		callbacks_registered = true;
	}
}

/*
 * pdp._shred_erase_keys(subject text) RETURNS jsonb
 *
 * Erasure's hook: schedules the destruction of the (canonical) subject's
 * keys at commit and returns what the receipt records of it,
 * {"subject_keys": {"destroyed": n, "when": "at commit"}}, n being the
 * subject's entries in the store now; '{}' when it has none (or there is no
 * store).  Never a key, salt or tag.
 */
Datum
pdp_shred_erase_keys(PG_FUNCTION_ARGS)
{
	text	   *subject = PG_GETARG_TEXT_PP(0);
	char	   *canon;
	size_t		len;
	char	   *path;
	ShredStore	st;
	volatile int count = 0;
	MemoryContext old;
	ShredPending *p;
	unsigned char *tags;
	int			ntags;

	if (pdp_key_file == NULL || pdp_key_file[0] == '\0')
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	canonical_or_error(VARDATA_ANY(subject), VARSIZE_ANY_EXHDR(subject), &canon, &len);
	if (!shred_domain_get(pdp_function_owner(fcinfo->flinfo->fn_oid), false))
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	tags = all_tags(canon, len, &ntags);
	path = store_path();
	st.fd = -1;
	if (!store_open(path, &st, true))
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	PG_TRY();
	{
		unsigned char salt[32];

		for (int i = 0; i < ntags; i++)
			if (store_find(&st, path, tags + 32 * i, salt, NULL))
				count++;
		pdp_cleanse(salt, sizeof(salt));
	}
	PG_FINALLY();
	{
		if (st.fd >= 0)
			close(st.fd);
	}
	PG_END_TRY();
	if (count == 0)
		PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot destroy subject keys during recovery")));

	shred_register_callbacks();
	old = MemoryContextSwitchTo(TopTransactionContext);
	p = palloc(sizeof(ShredPending));
	p->tags = palloc(Max(ntags, 1) * 32);
	memcpy(p->tags, tags, (size_t) ntags * 32);
	p->ntags = ntags;
	p->owner = GetCurrentSubTransactionId();
	pending = lappend(pending, p);
	MemoryContextSwitchTo(old);
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in,
										CStringGetDatum(psprintf("{\"subject_keys\": {\"destroyed\": %d, \"when\": \"at commit\"}}", count))));
}

/*
 * pdp.subject_key_store_status() RETURNS TABLE(path text, subject_keys bigint, bytes bigint)
 * Where the store is (superusers only) and how many entries it holds; no
 * key material.
 */
Datum
pdp_subject_key_store_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *path = store_path();
	ShredStore	st;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};

	InitMaterializedSRF(fcinfo, 0);
	/* The path says where pdp.key_file is, which only superusers may see. */
	values[0] = CStringGetTextDatum(path);
	nulls[0] = !superuser();
	if (store_open(path, &st, true))
	{
		close(st.fd);
		values[1] = Int64GetDatum(st.count);
		values[2] = Int64GetDatum(st.size);
	}
	else
	{
		values[1] = Int64GetDatum(0);
		nulls[2] = true;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	return (Datum) 0;
}
