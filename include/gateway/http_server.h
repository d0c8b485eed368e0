/*
 * http_server.h - the data plane's dispatcher: requests for an endpoint
 * go to request.c, GET /v1/models is answered here, anything else gets an
 * error in the API's shape.
 */
#ifndef TOLLGATE_HTTP_SERVER_H
#define TOLLGATE_HTTP_SERVER_H

struct event_base;
struct httpd;
struct request_loop;

/* The data plane's server on base, its requests belonging to loop. */
struct httpd *http_server_new(struct event_base *base,
			      struct request_loop *loop);

#endif
