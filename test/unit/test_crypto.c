/* Unit tests of the OpenSSL wrappers against published vectors. */
#include "pdp_crypto.h"
#include "tap.h"

static void
unhex(const char *h, unsigned char *out)
{
	for (size_t i = 0; h[2 * i]; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
}

int
main(void)
{
	unsigned char ikm[22],
				salt[13],
				info[10],
				okm[42],
				mac[32];
	char		hex[85];

	/* RFC 5869, test case 1. */
	memset(ikm, 0x0b, sizeof(ikm));
	unhex("000102030405060708090a0b0c", salt);
	unhex("f0f1f2f3f4f5f6f7f8f9", info);
	ok(pdp_hkdf_sha256(ikm, 22, salt, 13, info, 10, okm, 42), "HKDF runs");
	pdp_hex_encode(okm, 42, hex);
	is_str(hex, "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
		   "HKDF-SHA-256 matches RFC 5869 test case 1");

	/* RFC 4231, test case 2. */
	ok(pdp_hmac_sha256((const unsigned char *) "Jefe", 4,
					   (const unsigned char *) "what do ya want for nothing?", 28, mac), "HMAC runs");
	pdp_hex_encode(mac, 32, hex);
	is_str(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
		   "HMAC-SHA-256 matches RFC 4231 test case 2");

	ok(pdp_sha256((const unsigned char *) "abc", 3, mac), "SHA-256 runs");
	pdp_hex_encode(mac, 32, hex);
	is_str(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "SHA-256 of abc (FIPS 180-2)");

	{
		unsigned char a[32] = {0},
					b[32] = {0};

		ok(pdp_random_bytes(a, 32) && pdp_random_bytes(b, 32) && memcmp(a, b, 32) != 0,
		   "the random generator gives two different blocks");
		pdp_cleanse(a, 32);
		ok(memcmp(a, (unsigned char[32]) {0}, 32) == 0, "cleanse zeroes memory");
	}
	/*
	 * AES-256-GCM: test case 16 of McGrew and Viega, "The Galois/Counter Mode
	 * of Operation (GCM)" (256-bit key, 96-bit IV, additional data).
	 */
	{
		unsigned char key[32],
					iv[12],
					aad[20],
					pt[60],
					ct[60],
					tag[16],
					back[60];
		char		chex[121];

		unhex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308", key);
		unhex("cafebabefacedbaddecaf888", iv);
		unhex("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
		unhex("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
			  "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39", pt);
		ok(pdp_gcm_seal(key, iv, aad, sizeof(aad), pt, sizeof(pt), ct, tag), "GCM seal runs");
		pdp_hex_encode(ct, sizeof(ct), chex);
		is_str(chex, "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
			   "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
			   "AES-256-GCM ciphertext matches the GCM paper's test case 16");
		pdp_hex_encode(tag, sizeof(tag), hex);
		is_str(hex, "76fc6ece0f4e1768cddf8853bb2d551b", "AES-256-GCM tag matches test case 16");
		ok(pdp_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back) && memcmp(back, pt, sizeof(pt)) == 0,
		   "GCM open gives the plaintext back");
		ct[7] ^= 1;
		ok(!pdp_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back), "a changed ciphertext does not open");
		ct[7] ^= 1;
		aad[0] ^= 1;
		ok(!pdp_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back), "changed additional data does not open");
		aad[0] ^= 1;
		tag[15] ^= 1;
		ok(!pdp_gcm_open(key, iv, aad, sizeof(aad), ct, sizeof(ct), tag, back), "a changed tag does not open");
	}
	return done_testing();
}
