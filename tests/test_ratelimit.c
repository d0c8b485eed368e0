/*
 * test_ratelimit.c - RPM, TPM and concurrency limits on a clock the test
 * moves: sliding minutes, refusals that count nothing, Retry-After, the
 * tighter of tenant and key, and settlement of reserved tokens.
 */
#include <string.h>

#include "ratelimit.h"
#include "tap.h"

#define MIN 60000LL

/* RPM: the limit holds inside a minute and across a minute boundary. */
static void
test_rpm(void)
{
	struct rl_limits l = { .rpm = 3 };
	struct rl_ticket t;
	struct rl_status st;
	int64_t now = 1000 * MIN + 30000; /* half way through a minute */

	for (int i = 0; i < 3; i++) {
		is_int(ratelimit_admit(1, &l, 0, NULL, 10, now, &t, &st), 0,
		       "rpm: request %d admitted", i + 1);
		is_int(st.remaining_requests, 2 - i, "rpm: %d left", 2 - i);
		ratelimit_settle(&t, 10, now);
	}
	is_int(ratelimit_admit(1, &l, 0, NULL, 10, now, &t, &st), -1,
	       "rpm: fourth refused");
	is_str(st.refused, "requests", "rpm: refused for requests");
	is_str(st.scope, "tenant", "rpm: by the tenant's limit");
	is_int(st.limit, 3, "rpm: limit reported");
	ok(st.retry_after_ms > 0 && st.retry_after_ms <= 2 * MIN,
	   "rpm: retry after %lld ms", (long long)st.retry_after_ms);
	/* Just after the boundary the previous minute still weighs in. */
	is_int(ratelimit_admit(1, &l, 0, NULL, 10, 1001 * MIN + 1000, &t, &st),
	       -1, "rpm: a burst cannot straddle the minute boundary");
	/* Where Retry-After pointed, a request fits. */
	is_int(ratelimit_admit(1, &l, 0, NULL, 10, now + 2 * MIN, &t, &st), 0,
	       "rpm: admitted once the window slid past");
	ratelimit_settle(&t, 10, now + 2 * MIN);
}

/* TPM: reservations count at admission and are corrected at the end. */
static void
test_tpm(void)
{
	struct rl_limits l = { .tpm = 1000 };
	struct rl_ticket a, b;
	struct rl_status st;
	int64_t now = 2000 * MIN;

	is_int(ratelimit_admit(2, &l, 0, NULL, 600, now, &a, &st), 0,
	       "tpm: 600 reserved");
	is_int(st.remaining_tokens, 400, "tpm: 400 left");
	is_int(ratelimit_admit(2, &l, 0, NULL, 600, now, &b, &st), -1,
	       "tpm: a second 600 does not fit");
	is_str(st.refused, "tokens", "tpm: refused for tokens");
	ratelimit_settle(&a, 100, now);
	is_int(ratelimit_admit(2, &l, 0, NULL, 600, now, &b, &st), 0,
	       "tpm: fits once the first settled at 100");
	is_int(st.remaining_tokens, 300, "tpm: 1000 - 100 - 600 = 300");
	ratelimit_settle(&b, 600, now);
	is_int(ratelimit_admit(2, &l, 0, NULL, 5000, now + 5 * MIN, &a, &st),
	       -1, "tpm: larger than the whole limit never fits");
	is_int(st.retry_after_ms, 0, "tpm: ...and says so (no retry time)");
}

/* Concurrency: slots are held until settlement. */
static void
test_concurrency(void)
{
	struct rl_limits l = { .concurrency = 2 };
	struct rl_ticket t[3];
	struct rl_status st;
	int64_t now = 3000 * MIN;

	is_int(ratelimit_admit(3, &l, 0, NULL, 1, now, &t[0], &st), 0,
	       "concurrency: first");
	is_int(ratelimit_admit(3, &l, 0, NULL, 1, now, &t[1], &st), 0,
	       "concurrency: second");
	is_int(ratelimit_admit(3, &l, 0, NULL, 1, now, &t[2], &st), -1,
	       "concurrency: third refused");
	is_str(st.refused, "concurrency", "concurrency: reason");
	ratelimit_settle(&t[0], 1, now);
	is_int(ratelimit_admit(3, &l, 0, NULL, 1, now, &t[2], &st), 0,
	       "concurrency: admitted after one ended");
	ratelimit_settle(&t[1], 1, now);
	ratelimit_settle(&t[2], 1, now);
}

/* The key's own limit applies besides the tenant's; a refused request is
 * counted by neither. */
static void
test_key_and_tenant(void)
{
	struct rl_limits tl = { .rpm = 5 }, kl = { .rpm = 2 };
	struct rl_ticket t;
	struct rl_status st;
	int64_t now = 4000 * MIN;

	for (int i = 0; i < 2; i++) {
		ok(ratelimit_admit(4, &tl, 40, &kl, 1, now, &t, &st) == 0,
		   "key: request %d", i + 1);
		ratelimit_settle(&t, 1, now);
	}
	is_int(st.limit_requests, 2, "key: headers show the tighter limit");
	is_int(ratelimit_admit(4, &tl, 40, &kl, 1, now, &t, &st), -1,
	       "key: third refused by the key");
	is_str(st.scope, "key", "key: scope");
	for (int i = 0; i < 3; i++) {
		int want = i < 2 ? 0 : -1;
		ok(ratelimit_admit(4, &tl, 41, &kl, 1, now, &t, &st) == want,
		   "other key of the tenant: request %d", i + 1);
		if (i < 2)
			ratelimit_settle(&t, 1, now);
	}
	is_int(ratelimit_admit(4, &tl, 42, NULL, 1, now, &t, &st), 0,
	       "tenant: the fifth request fits (refusals counted nothing)");
	ratelimit_settle(&t, 1, now);
	is_int(ratelimit_admit(4, &tl, 42, NULL, 1, now, &t, &st), -1,
	       "tenant: the sixth does not");
	is_str(st.scope, "tenant", "tenant: scope");
}

/* Many tenants: the table grows without losing counts held in tickets. */
static void
test_growth(void)
{
	struct rl_limits l = { .concurrency = 1 };
	struct rl_ticket first, t;
	struct rl_status st;
	int64_t now = 5000 * MIN;

	is_int(ratelimit_admit(10000, &l, 0, NULL, 1, now, &first, &st), 0,
	       "growth: first tenant holds its slot");
	for (int64_t id = 10001; id < 12000; id++) {
		if (ratelimit_admit(id, &l, 0, NULL, 1, now, &t, &st) != 0)
			break;
		ratelimit_settle(&t, 1, now);
	}
	is_int(ratelimit_admit(10000, &l, 0, NULL, 1, now, &t, &st), -1,
	       "growth: first tenant's slot still held");
	ratelimit_settle(&first, 1, now);
	is_int(ratelimit_admit(10000, &l, 0, NULL, 1, now, &t, &st), 0,
	       "growth: released through a ticket taken before the growth");
	ratelimit_settle(&t, 1, now);
}

int
main(void)
{
	test_rpm();
	test_tpm();
	test_concurrency();
	test_key_and_tenant();
	test_growth();
	return done_testing();
}
