/*
 * fuzz_keys.c - finding the key among what a client sends in
 * Authorization, x-api-key and api-key (keyhash.c's keyhash_find), JWTs
 * and their base64url and JSON included.
 *
 * Input: a byte saying which headers are present (bits 0-2), then their
 * values separated by newlines. The key found is a C string of the length
 * returned, at most KEY_FIND_MAX; a tollgate key given alone in x-api-key
 * or api-key is found as it is; the same headers give the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "keyhash.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	unsigned present = fuzz_take(&in);
	char *text = malloc(in.n + 1), *v[3] = { NULL, NULL, NULL }, *p;
	char out[KEY_FIND_MAX + 1], again[KEY_FIND_MAX + 1];
	struct key_headers kh;
	size_t n, m;

	if (text == NULL)
		return 0;
	memcpy(text, in.p, in.n);
	text[in.n] = '\0';
	p = text;
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(p, '\n');
		if (present & (1u << i))
			v[i] = p;
		if (nl == NULL)
			break;
		*nl = '\0';
		p = nl + 1;
	}
	kh = (struct key_headers){ v[0], v[1], v[2] };
	n = keyhash_find(&kh, out);
	FUZZ_CHECK(n <= KEY_FIND_MAX, "length %zu", n);
	FUZZ_CHECK(n == 0 || strlen(out) == n, "length %zu, string %zu", n,
		   strlen(out));
	m = keyhash_find(&kh, again);
	FUZZ_CHECK(m == n && memcmp(out, again, n) == 0, "not stable");
	for (int i = 1; i < 3; i++) {
		struct key_headers alone = { NULL, i == 1 ? v[1] : NULL,
					     i == 2 ? v[2] : NULL };
		if (v[i] == NULL || strncmp(v[i], KEY_PREFIX, 3) != 0 ||
		    strlen(v[i]) > KEY_FIND_MAX || strchr(v[i], ' ') != NULL ||
		    strchr(v[i], '\t') != NULL)
			continue;
		n = keyhash_find(&alone, out);
		FUZZ_CHECK(n == strlen(v[i]) && strcmp(out, v[i]) == 0,
			   "a key alone in header %d not found as it is", i);
	}
	free(text);
	return 0;
}
