/*
 * tap.h: a minimal TAP producer for the plain-C unit tests, read by prove.
 */
#ifndef PDP_TAP_H
#define PDP_TAP_H

#include <stdio.h>
#include <string.h>

static int	tap_count = 0;
static int	tap_failed = 0;

#define ok(cond, ...) \
	do { \
		int ok_ = (cond) ? 1 : 0; \
		tap_count++; \
		if (!ok_) tap_failed++; \
		printf("%sok %d - ", ok_ ? "" : "not ", tap_count); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!ok_) printf("#   failed at %s:%d\n", __FILE__, __LINE__); \
	} while (0)

#define is_int(got, want, ...) \
	do { \
		long got_ = (long) (got), want_ = (long) (want); \
		ok(got_ == want_, __VA_ARGS__); \
		if (got_ != want_) printf("#   got %ld, want %ld\n", got_, want_); \
	} while (0)

#define is_str(got, want, ...) \
	do { \
		const char *got_ = (got), *want_ = (want); \
		int same_ = got_ && want_ && strcmp(got_, want_) == 0; \
		ok(same_, __VA_ARGS__); \
		if (!same_) printf("#   got \"%s\", want \"%s\"\n", got_ ? got_ : "(null)", want_ ? want_ : "(null)"); \
	} while (0)

static inline int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif
