/*-------------------------------------------------------------------------
 * keyed.c
 *	  Cached keyed contexts for per-row functions (see keyed.h).
 *-------------------------------------------------------------------------
 */
#include "keyed.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "utils/memutils.h"

#include "pdp_crypto.h"

struct PdpKeyed
{
	PdpKeyedKind kind;
	const char *label;			/* a string literal */
	bool		valid;
	uint64		generation;
	uint16		asked_version;	/* 0: active */
	uint16		version;		/* the version actually used */
	Size		domain_len;
	char		domain[PDP_MAX_DOMAIN];
	EVP_MAC_CTX *hmac;
	pdp_ff1    *ff1;
	pdp_siv    *siv;
	MemoryContextCallback cleanup;
};

static EVP_MAC *hmac_algorithm = NULL;

static void
keyed_release(PdpKeyed *k)
{
	EVP_MAC_CTX_free(k->hmac);
	pdp_ff1_free(k->ff1);
	pdp_siv_free(k->siv);
	k->hmac = NULL;
	k->ff1 = NULL;
	k->siv = NULL;
	k->valid = false;
}

static void
keyed_cleanup_callback(void *arg)
{
	keyed_release((PdpKeyed *) arg);
}

static void
keyed_build(PdpKeyed *k, uint16 version)
{
	const pdp_key *master;
	unsigned char subkey[PDP_SIV_KEY_BYTES];
	bool		ok = false;

	master = version == 0 ? pdp_active_key() : pdp_key_by_version(version);
	if (master == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key version %u is not in the key file", (unsigned) version),
				 errhint("pdp.key_status() lists the versions the key file holds.")));

	keyed_release(k);
	pdp_derive_subkey(master, k->label, k->domain, k->domain_len, subkey);
	if (k->kind == PDP_KEYED_SIV)
	{
		/* AES-256-SIV needs 512 bits: a second derivation under another label. */
		char		label2[64];

		snprintf(label2, sizeof(label2), "%s/2", k->label);
		pdp_derive_subkey(master, label2, k->domain, k->domain_len, subkey + 32);
	}

	switch (k->kind)
	{
		case PDP_KEYED_HMAC:
			{
				OSSL_PARAM	params[2];

				if (hmac_algorithm == NULL)
					hmac_algorithm = EVP_MAC_fetch(NULL, "HMAC", NULL);
				params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
				params[1] = OSSL_PARAM_construct_end();
				k->hmac = hmac_algorithm ? EVP_MAC_CTX_new(hmac_algorithm) : NULL;
				ok = k->hmac != NULL && EVP_MAC_init(k->hmac, subkey, 32, params) == 1;
				break;
			}
		case PDP_KEYED_FF1:
			k->ff1 = pdp_ff1_new(subkey, 32);
			ok = k->ff1 != NULL;
			break;
		case PDP_KEYED_SIV:
			k->siv = pdp_siv_new(subkey);
			ok = k->siv != NULL;
			break;
	}
	pdp_cleanse(subkey, sizeof(subkey));
	if (!ok)
	{
		keyed_release(k);
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not set up a keyed context"),
				 errdetail("OpenSSL failed.")));
	}
	k->version = master->version;
	k->valid = true;
}

PdpKeyed *
pdp_keyed_get(FunctionCallInfo fcinfo, PdpKeyedKind kind, const char *label,
			  const char *domain, Size domain_len, uint16 version)
{
	PdpKeyed   *k = (PdpKeyed *) fcinfo->flinfo->fn_extra;
	uint64		generation;

	if (domain_len > PDP_MAX_DOMAIN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("domain is too long"),
				 errdetail("A domain may have at most %d bytes.", PDP_MAX_DOMAIN)));

	if (k == NULL)
	{
		k = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(PdpKeyed));
		k->kind = kind;
		k->label = label;
		k->cleanup.func = keyed_cleanup_callback;
		k->cleanup.arg = k;
		MemoryContextRegisterResetCallback(fcinfo->flinfo->fn_mcxt, &k->cleanup);
		fcinfo->flinfo->fn_extra = k;
	}

	generation = pdp_keyring_generation();	/* loads the keyring if needed */
	if (unlikely(!k->valid || k->generation != generation ||
				 k->asked_version != version || k->domain_len != domain_len ||
				 (domain_len > 0 && memcmp(k->domain, domain, domain_len) != 0)))
	{
		k->valid = false;
		k->domain_len = domain_len;
		memcpy(k->domain, domain, domain_len);
		k->asked_version = version;
		keyed_build(k, version);
		k->generation = generation;
	}
	return k;
}

void
pdp_keyed_check_domain(const char *domain, Size domain_len)
{
	static const char *const reserved[] = {"audit", "erasure"};
	bool		refused = domain_len >= 4 && memcmp(domain, "pdp.", 4) == 0;

	for (size_t i = 0; !refused && i < lengthof(reserved); i++)
		refused = domain_len == strlen(reserved[i]) && memcmp(domain, reserved[i], domain_len) == 0;
	if (refused)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("key domain is reserved for pdp_ext"),
				 errdetail("The domains \"audit\", \"erasure\" and those beginning with \"pdp.\" key pdp_ext's own pseudonyms."),
				 errhint("Choose another domain.")));
}

uint16
pdp_keyed_version(PdpKeyed *k)
{
	return k->version;
}

void
pdp_keyed_hmac(PdpKeyed *k, const void *msg, Size len, unsigned char out[32])
{
	size_t		outl = 0;

	/* init with a NULL key reuses the key schedule set up in keyed_build. */
	if (EVP_MAC_init(k->hmac, NULL, 0, NULL) != 1 ||
		EVP_MAC_update(k->hmac, msg, len) != 1 ||
		EVP_MAC_final(k->hmac, out, &outl, 32) != 1 || outl != 32)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("could not compute HMAC-SHA-256"),
				 errdetail("OpenSSL failed.")));
}

pdp_ff1 *
pdp_keyed_ff1(PdpKeyed *k)
{
	return k->ff1;
}

pdp_siv *
pdp_keyed_siv(PdpKeyed *k)
{
	return k->siv;
}

void
pdp_report_ff1(pdp_ff1_status status)
{
	if (status == PDP_FF1_CRYPTO)
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("format-preserving encryption failed"),
				 errdetail("%s", pdp_ff1_status_message(status))));
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("value cannot be format-preserving encrypted"),
			 errdetail("%s", pdp_ff1_status_message(status)),
			 errhidestmt(true)));
}
