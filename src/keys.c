/*-------------------------------------------------------------------------
 * keys.c
 *	  The per-backend keyring: loading the key file named by pdp.key_file,
 *	  deriving per-purpose subkeys with HKDF, and pdp.key_status().
 *
 * Keys are read lazily, on the first call that needs one, and again after
 * every configuration reload (the GUC assign hook marks the ring stale).
 * Key bytes live only in this file's key memory and in callers' derived
 * subkeys; they are wiped with OPENSSL_cleanse when replaced or on failure,
 * and no message ever contains them or any line of the file.  The key
 * memory (the ring and the buffer the file is read into) is one page-aligned
 * anonymous mapping excluded from core dumps (MADV_DONTDUMP) and locked in
 * memory (mlock) where the system allows, so that it is never swapped out;
 * when locking is refused (RLIMIT_MEMLOCK) a LOG line says so once.
 *
 * The key file is opened once, without following the path again: every
 * check (regular file, owner, permissions, outside the data directory) is
 * made on the opened descriptor, so a file swapped in after a check of the
 * path is never read.
 *-------------------------------------------------------------------------
 */
#include "pdp_ext.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#include "pdp_crypto.h"

PG_FUNCTION_INFO_V1(pdp_key_status);
PG_FUNCTION_INFO_V1(pdp_key_set);

typedef struct PdpKeyring
{
	int			nkeys;
	int			active;			/* index of the highest version */
	pdp_key		keys[PDP_MAX_KEYS];
} PdpKeyring;

/* Both in the key memory (keyring_memory). */
static PdpKeyring *keyring = NULL;
static char *keyfile_buf = NULL;	/* the file's bytes; wiped after every read */
#define KEYFILE_BUF_SIZE (PDP_MAX_KEYFILE_SIZE + 1)

static bool keyring_loaded = false;
static bool keyring_stale = true;
static uint64 keyring_generation = 0;

static const char hkdf_salt[] = "pdp_ext subkey v1";

void
pdp_keys_mark_stale(void)
{
	keyring_stale = true;
}

/*
 * Memory for secrets (what names them in messages, e.g. "keys"): page-aligned,
 * never in a core dump, locked in RAM where RLIMIT_MEMLOCK allows (a refusal
 * is logged once per *logged flag).  Lives as long as the backend.
 */
void *
pdp_secret_memory(size_t size, const char *what, bool *logged)
{
	size_t		page = (size_t) sysconf(_SC_PAGESIZE);
	void	   *mem;

	size = TYPEALIGN(page, size);
	mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate memory for pdp_ext's %s: %m", what)));
#ifdef MADV_DONTDUMP
	if (madvise(mem, size, MADV_DONTDUMP) != 0)
	{
		int			save_errno = errno;

		munmap(mem, size);
		errno = save_errno;
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not exclude pdp_ext's %s from core dumps: %m", what)));
	}
#endif
	if (mlock(mem, size) != 0 && !*logged)
	{
		*logged = true;
		ereport(LOG,
				(errmsg("could not lock pdp_ext's %s in memory: %m", what),
				 errdetail("The keys may be written to swap."),
				 errhint("Raise the server's RLIMIT_MEMLOCK (LimitMEMLOCK in its systemd unit) by at least %zu bytes.", size)));
	}
	return mem;
}

/* Map the key memory on first use. */
static void
keyring_memory(void)
{
	static bool lock_refusal_logged = false;
	void	   *mem;

	if (keyring != NULL)
		return;
	mem = pdp_secret_memory(MAXALIGN(sizeof(PdpKeyring)) + KEYFILE_BUF_SIZE, "keys", &lock_refusal_logged);
	keyring = (PdpKeyring *) mem;
	keyfile_buf = (char *) mem + MAXALIGN(sizeof(PdpKeyring));
}

static void
keyring_wipe(void)
{
	if (keyring != NULL)
		pdp_cleanse(keyring, sizeof(*keyring));
	keyring_loaded = false;
}

/*
 * Is the opened file inside the data directory?  The descriptor's own path
 * (/proc/self/fd) is resolved, not the configured one, which may since point
 * elsewhere; without /proc, the configured path is resolved.
 */
bool
pdp_fd_in_data_directory(int fd, const char *path)
{
	char		fd_link[64];
	char		real_path[PATH_MAX];
	char		real_data[PATH_MAX];
	size_t		n;

	snprintf(fd_link, sizeof(fd_link), "/proc/self/fd/%d", fd);
	if (DataDir == NULL || realpath(DataDir, real_data) == NULL)
		return false;
	if (realpath(fd_link, real_path) == NULL && realpath(path, real_path) == NULL)
		return false;
	n = strlen(real_data);
	return strncmp(real_path, real_data, n) == 0 &&
		(real_path[n] == '/' || real_path[n] == '\0');
}

/*
 * Read and validate the key file into the static keyring, replacing (and
 * wiping) what was there.  Raises an error, with the keyring wiped, if the
 * file is unset, missing, too open, inside the data directory or malformed.
 */
static void
keyring_load(void)
{
	const char *path = pdp_key_file;
	struct stat st;
	ssize_t		nread = 0;
	int			fd;
	pdp_keyfile_status status;
	int			bad_line;

	keyring_wipe();

	if (path == NULL || path[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("pdp_ext has no key file"),
				 errdetail("The setting \"pdp.key_file\" is empty."),
				 errhint("Create one with tools/pdp-keygen, set \"pdp.key_file\" in postgresql.conf and reload.")));

	keyring_memory();

	/*
	 * O_NONBLOCK: a FIFO put in the file's place must not block the open; it
	 * is refused below as not a regular file.  O_NOCTTY: nor a terminal.
	 */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open key file \"%s\": %m", path),
				 errhint("Check \"pdp.key_file\"; tools/pdp-keygen creates a key file.")));

	if (fstat(fd, &st) != 0)
	{
		int			save_errno = errno;

		close(fd);
		errno = save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat key file \"%s\": %m", path)));
	}
	if (!S_ISREG(st.st_mode))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" is not a regular file", path)));
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" has group or world access", path),
				 errdetail("A key file must be accessible by its owner only."),
				 errhint("Run chmod 0600 on the file.")));
	}
	if (st.st_mode & (S_IXUSR | S_ISUID | S_ISGID | S_ISVTX))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" has execute or special permission bits", path),
				 errdetail("A key file's mode must be 0600 or 0400."),
				 errhint("Run chmod 0600 on the file.")));
	}
	if (st.st_uid != geteuid() && st.st_uid != 0)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" must be owned by the database server's user or root", path)));
	}
	if (pdp_fd_in_data_directory(fd, path))
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" is inside the data directory", path),
				 errdetail("Keys kept in the data directory travel with every base backup and copy of it."),
				 errhint("Move the key file outside the data directory.")));
	}
	if (st.st_size > PDP_MAX_KEYFILE_SIZE)
	{
		close(fd);
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("key file \"%s\" is malformed", path),
				 errdetail("%s", pdp_keyfile_status_message(PDP_KEYFILE_TOO_LARGE))));
	}

	while (nread < (ssize_t) KEYFILE_BUF_SIZE)
	{
		ssize_t		r = read(fd, keyfile_buf + nread, KEYFILE_BUF_SIZE - nread);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
		{
			int			save_errno = errno;

			pdp_cleanse(keyfile_buf, KEYFILE_BUF_SIZE);
			close(fd);
			errno = save_errno;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read key file \"%s\": %m", path)));
		}
		if (r == 0)
			break;
		nread += r;
	}
	close(fd);

	status = pdp_keyfile_parse(keyfile_buf, (size_t) nread, keyring->keys,
							   PDP_MAX_KEYS, &keyring->nkeys, &keyring->active,
							   &bad_line);
	pdp_cleanse(keyfile_buf, KEYFILE_BUF_SIZE);

	if (status != PDP_KEYFILE_OK)
	{
		keyring_wipe();
		if (bad_line > 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("key file \"%s\" is malformed at line %d", path, bad_line),
					 errdetail("%s", pdp_keyfile_status_message(status))));
		else
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("key file \"%s\" is malformed", path),
					 errdetail("%s", pdp_keyfile_status_message(status))));
	}

	keyring_loaded = true;
	keyring_stale = false;
	keyring_generation++;
}

/* Make sure the keyring reflects the current settings. */
static inline void
keyring_ensure(void)
{
	if (unlikely(keyring_stale || !keyring_loaded))
		keyring_load();
}

/*
 * A number that changes whenever the keyring is (re)loaded.  Callers that
 * cache derived subkeys compare it to decide whether their cache is valid;
 * calling it also loads the ring if needed.
 */
uint64
pdp_keyring_generation(void)
{
	keyring_ensure();
	return keyring_generation;
}

const pdp_key *
pdp_active_key(void)
{
	keyring_ensure();
	return &keyring->keys[keyring->active];
}

/* The key with this version, or NULL if the file no longer holds it. */
const pdp_key *
pdp_key_by_version(uint16 version)
{
	keyring_ensure();
	for (int i = 0; i < keyring->nkeys; i++)
		if (keyring->keys[i].version == version)
			return &keyring->keys[i];
	return NULL;
}

/* The number of keys in the file, and the i-th of them (file order). */
int
pdp_key_count(void)
{
	keyring_ensure();
	return keyring->nkeys;
}

const pdp_key *
pdp_key_at(int i)
{
	keyring_ensure();
	Assert(i >= 0 && i < keyring->nkeys);
	return &keyring->keys[i];
}

/*
 * Derive a 256-bit subkey for one use ("label", e.g. "pseudonym") and one
 * domain from a master key: HKDF-SHA-256 with info = label || 0x00 || domain.
 * Master keys are never used raw.
 */
void
pdp_derive_subkey(const pdp_key *key, const char *label,
				  const char *domain, size_t domain_len,
				  unsigned char out[PDP_KEY_BYTES])
{
	size_t		label_len = strlen(label);
	size_t		info_len = label_len + 1 + domain_len;
	unsigned char *info = palloc(info_len);
	bool		ok;

	memcpy(info, label, label_len);
	info[label_len] = 0;
	memcpy(info + label_len + 1, domain, domain_len);
	ok = pdp_hkdf_sha256(key->bytes, PDP_KEY_BYTES,
						 (const unsigned char *) hkdf_salt, sizeof(hkdf_salt) - 1,
						 info, info_len, out, PDP_KEY_BYTES);
	pfree(info);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not derive a subkey"),
				 errdetail("OpenSSL's HKDF failed.")));
}

/*
 * pdp.key_status(): one row per key version with its public fingerprint and
 * whether it is the one used for new values.  Never returns key bytes.
 */
Datum
pdp_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	keyring_ensure();

	for (int i = 0; i < keyring->nkeys; i++)
	{
		Datum		values[3];
		bool		nulls[3] = {false, false, false};
		char		fingerprint[17];

		if (!pdp_key_fingerprint(keyring->keys[i].bytes, fingerprint))
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("could not compute a key fingerprint")));
		values[0] = Int32GetDatum(keyring->keys[i].version);
		values[1] = CStringGetTextDatum(fingerprint);
		values[2] = BoolGetDatum(i == keyring->active);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * pdp._key_set(): this server's key versions and public fingerprints as one
 * string, in version order, the active one starred ("1:<fingerprint>* ..."),
 * which pdp._citus_keyed compares on every Citus node computing a keyed rule
 * with the coordinator's.  It is called once per row there, so the string is
 * kept (in static memory, at most PDP_MAX_KEYS entries of 29 bytes) until the
 * key file is read again.  Never key bytes.
 */
#define KEY_SET_ENTRY 32
static char key_set_cache[PDP_MAX_KEYS * KEY_SET_ENTRY + 1];
static uint64 key_set_generation = 0;	/* 0: not computed (a loaded keyring's is at least 1) */

Datum
pdp_key_set(PG_FUNCTION_ARGS)
{
	keyring_ensure();
	if (key_set_generation != keyring_generation)
	{
		size_t		len = 0;
		int64		last = PG_INT64_MIN;

		key_set_cache[0] = '\0';
		for (int n = 0; n < keyring->nkeys; n++)
		{
			int			next = -1;
			char		fingerprint[17];

			/* the lowest version above the last one written */
			for (int i = 0; i < keyring->nkeys; i++)
				if (keyring->keys[i].version > last &&
					(next < 0 || keyring->keys[i].version < keyring->keys[next].version))
					next = i;
			if (next < 0)
				break;
			last = keyring->keys[next].version;
			if (!pdp_key_fingerprint(keyring->keys[next].bytes, fingerprint))
				ereport(ERROR,
						(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
						 errmsg("could not compute a key fingerprint")));
			len += snprintf(key_set_cache + len, sizeof(key_set_cache) - len, "%s%d:%s%s",
							len > 0 ? " " : "", keyring->keys[next].version, fingerprint,
							next == keyring->active ? "*" : "");
		}
		key_set_generation = keyring_generation;
	}
	PG_RETURN_TEXT_P(cstring_to_text(key_set_cache));
}
