/*
 * mock_gzip.c - answers compressed with gzip, as a provider or a CDN in
 * front of it sends them: always (a proxy that compresses whatever the
 * client asked), or when the request's Accept-Encoding names gzip. A
 * stream is compressed event by event, each flushed (Z_SYNC_FLUSH) so the
 * client can decode it as it comes; the gzip trailer ends it.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "mock.h"

/* Whether the request's Accept-Encoding names gzip. */
static int
asked_for_gzip(struct evhttp_request *req)
{
	const char *v = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Accept-Encoding");

	for (; v != NULL && *v != '\0'; v++)
		if (strncasecmp(v, "gzip", 4) == 0)
			return 1;
	return 0;
}

int
mock_gzip_begin(struct mock_req *mr)
{
	z_stream *z;

	if (srv.cfg.mc_gzip == GZIP_OFF ||
	    (srv.cfg.mc_gzip == GZIP_ASKED && !asked_for_gzip(mr->mr_req)))
		return 0;
	z = calloc(1, sizeof *z);
	if (z == NULL || deflateInit2(z, Z_DEFAULT_COMPRESSION, Z_DEFLATED,
				      15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	mr->mr_gz = z;
	evhttp_add_header(evhttp_request_get_output_headers(mr->mr_req),
			  "Content-Encoding", "gzip");
	return 1;
}

void
mock_gzip_add(struct mock_req *mr, const char *p, size_t len, int finish,
	      struct evbuffer *out)
{
	z_stream *z = mr->mr_gz;
	unsigned char chunk[16384];
	int rc;

	z->next_in = (unsigned char *)(uintptr_t)p;
	z->avail_in = (uInt)len;
	do {
		z->next_out = chunk;
		z->avail_out = sizeof chunk;
		rc = deflate(z, finish ? Z_FINISH : Z_SYNC_FLUSH);
		if (rc == Z_STREAM_ERROR)
			abort();
		evbuffer_add(out, chunk, sizeof chunk - z->avail_out);
	} while (z->avail_out == 0 || (finish && rc != Z_STREAM_END));
}

void
mock_gzip_end(struct mock_req *mr)
{
	if (mr->mr_gz == NULL)
		return;
	deflateEnd(mr->mr_gz);
	free(mr->mr_gz);
	mr->mr_gz = NULL;
}
